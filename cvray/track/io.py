"""MOTChallenge files: ``gt.txt`` / ``det.txt`` / tracker txt, ``seqinfo.ini``, sequence folders.

A MOT file is parsed into an ``(N, 10)`` float64 array with the columns of :data:`MOT_COLUMNS`
(missing trailing columns are filled with -1, MOT15 2D files have 10 columns, MOT16/17 gt 9):
``frame, id, x, y, w, h, conf, class, visibility, z`` -- boxes are top-left x, y, width, height in
pixels, frames start at 1. Every read goes through :mod:`cvray.io.storage`, so paths may be local
or ``s3://``. Errors name the file and line.
"""
from __future__ import annotations

import io as _io
import posixpath

import numpy as np

from cvray.data.mot import MOTFormatError, SeqInfo, read_seqinfo  # one seqinfo parser for all stages
from cvray.io import storage

__all__ = ["MOT_COLUMNS", "MOTFormatError", "SeqInfo", "find_sequences", "format_mot", "is_file", "read_predictions", "parse_mot",
           "read_mot", "read_seqinfo", "split_frames", "write_mot"]

MOT_COLUMNS = ("frame", "id", "x", "y", "w", "h", "conf", "class", "visibility", "z")
FRAME, ID, X, Y, W, H, CONF, CLS, VIS, Z = range(10)


def parse_mot(text: str, source: str = "<text>") -> np.ndarray:
    """Parse MOTChallenge text (comma or whitespace separated) into an (N, 10) array."""
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.replace(",", " ").split()
        if len(parts) < 6:
            raise MOTFormatError(f"{source}:{lineno}: expected at least 6 fields "
                                 f"(frame,id,x,y,w,h), got {len(parts)}: {line!r}")
        try:
            vals = [float(p) for p in parts[:10]]
        except ValueError:
            raise MOTFormatError(f"{source}:{lineno}: non-numeric field in {line!r}") from None
        if not np.all(np.isfinite(vals)):
            raise MOTFormatError(f"{source}:{lineno}: non-finite value in {line!r}")
        if vals[FRAME] < 1 or vals[FRAME] != int(vals[FRAME]):
            raise MOTFormatError(f"{source}:{lineno}: frame must be an integer >= 1, got {parts[0]}")
        rows.append(vals + [-1.0] * (10 - len(vals)))
    out = np.asarray(rows, dtype=np.float64).reshape(-1, 10)
    return out[np.lexsort((out[:, ID], out[:, FRAME]))] if len(out) else out


def read_mot(uri: str) -> np.ndarray:
    """Read a MOTChallenge txt file (local path or URI) into an (N, 10) array sorted by frame, id."""
    return parse_mot(storage.read_bytes(uri).decode("utf-8", errors="replace"), source=uri)


def format_mot(rows: np.ndarray) -> str:
    """MOTChallenge tracker format: ``frame,id,x,y,w,h,conf,-1,-1,-1`` one line per box, every
    float at full (round-trip) precision so ``track eval`` on the file gives ``track``'s metrics."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, rows.shape[1] if np.ndim(rows) == 2 else 10)
    buf = _io.StringIO()
    for r in rows:
        conf = r[CONF] if rows.shape[1] > CONF else 1.0
        # shortest round-trip repr: reading the file back gives the very floats that were scored
        x, y, w, h, c = (repr(float(v)) for v in (r[X], r[Y], r[W], r[H], conf))
        buf.write(f"{int(r[FRAME])},{int(r[ID])},{x},{y},{w},{h},{c},-1,-1,-1\n")
    return buf.getvalue()


def write_mot(rows: np.ndarray, uri: str) -> None:
    """Atomically write tracker rows as MOTChallenge txt."""
    storage.write_bytes(uri, format_mot(rows).encode())


def split_frames(rows: np.ndarray) -> dict[int, np.ndarray]:
    """Group rows (sorted by frame) into ``{frame: rows}`` without copying per row."""
    if len(rows) == 0:
        return {}
    frames = rows[:, FRAME].astype(np.int64)
    order = np.argsort(frames, kind="stable")
    rows, frames = rows[order], frames[order]
    uniq, start = np.unique(frames, return_index=True)
    ends = np.append(start[1:], len(rows))
    return {int(f): rows[s:e] for f, s, e in zip(uniq, start, ends)}


def is_file(uri: str) -> bool:
    """True when ``uri`` names an existing file (not a folder)."""
    import pyarrow.fs as pafs

    fs, path = storage.resolve(uri)
    return fs.get_file_info(path).type == pafs.FileType.File


def find_sequences(uri: str, kind: str = "gt") -> dict[str, str]:
    """Map sequence name -> txt URI for a file or a folder.

    Accepted layouts: a single file (named after its sequence folder when it is
    ``<seq>/gt/gt.txt`` or ``<seq>/det/det.txt``, else after its stem); a folder of MOTChallenge
    sequences ``<seq>/gt/gt.txt`` (``kind="gt"``) or ``<seq>/det/det.txt`` (``kind="det"``), also
    without the middle folder (``<seq>/gt.txt``, motmetrics' data layout); a
    flat folder of ``<seq>.txt`` (tracker output, TrackEval's ``data/`` folder is also searched).
    """
    if not storage.exists(uri):
        raise FileNotFoundError(f"{uri}: no such file or folder")
    if is_file(uri):
        parent = posixpath.dirname(uri.rstrip("/"))
        if posixpath.basename(parent) in ("gt", "det"):
            return {posixpath.basename(posixpath.dirname(parent)): uri}
        return {posixpath.splitext(posixpath.basename(uri))[0]: uri}
    found: dict[str, str] = {}
    for name in storage.list_dirs(uri):
        for cand in (storage.join(uri, name, kind, f"{kind}.txt"), storage.join(uri, name, f"{kind}.txt")):
            if storage.exists(cand):
                found[name] = cand
                break
    if found:
        return found
    for folder in (uri, storage.join(uri, "data")):
        for f in storage.list_files(folder, suffix=".txt", recursive=False):
            found[posixpath.splitext(posixpath.basename(f))[0]] = f
        if found:
            return found
    raise FileNotFoundError(f"{uri}: no MOTChallenge sequences found (expected <seq>/{kind}/{kind}.txt "
                            f"or <seq>.txt files)")


def read_predictions(uri: str) -> dict[str, np.ndarray]:
    """Detections from a ``cvray predict`` predictions Parquet file (or folder of parts) as MOT
    det rows per sequence: ``{sequence: (N, 10)}`` with ``frame, -1, x, y, w, h, score, label``.

    Video frames (``frame_index`` set, 0-based) are grouped by their source ``file_name`` and
    numbered ``frame_index + 1``; still images form one sequence named after the file, ordered by
    ``image_id``.
    """
    from cvray.predict.records import detections_from_table

    table = storage.read_parquet(uri) if is_file(uri) else storage.read_table_dir(uri)
    records = detections_from_table(table)
    stem = posixpath.splitext(posixpath.basename(uri.rstrip("/")))[0]
    groups: dict[str, list] = {}
    for d in records:
        key = (posixpath.splitext(posixpath.basename(d.file_name or ""))[0] or stem
               if d.frame_index is not None else stem)
        groups.setdefault(key, []).append(d)
    out: dict[str, np.ndarray] = {}
    for key, recs in groups.items():
        if all(r.frame_index is not None for r in recs):
            frames = [int(r.frame_index) + 1 for r in recs]
        else:
            order = np.argsort([r.image_id for r in recs], kind="stable")
            frames = np.empty(len(recs), np.int64)
            frames[order] = np.arange(1, len(recs) + 1)
        rows = []
        for f, r in zip(frames, recs):
            if len(r) == 0:
                continue
            block = np.full((len(r), 10), -1.0)
            block[:, 0] = f
            block[:, 2:4] = r.boxes[:, :2]
            block[:, 4:6] = r.boxes[:, 2:] - r.boxes[:, :2]
            block[:, 6] = r.scores
            block[:, 7] = r.labels
            rows.append(block)
        arr = np.concatenate(rows) if rows else np.zeros((0, 10))
        out[key] = arr[np.argsort(arr[:, 0], kind="stable")]
    return out
