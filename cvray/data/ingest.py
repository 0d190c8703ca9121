"""Ray Data ingest: COCO datasets → per-image records; MOT sequences / videos → ordered frames.

Thin Ray layer over :mod:`cvray.data.coco`, :mod:`cvray.data.mot` and :mod:`cvray.data.decode`.
An image that cannot be read or decoded becomes a row with ``ok=False`` and the reason (never a
crash, never a silently dropped row); :func:`issue_rows` turns those rows into issues-table rows.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np

from cvray.data.coco import DatasetError, image_records, load_coco, safe_join
from cvray.data.decode import ImageDecodeError, decode_image
from cvray.data.mot import frame_records
from cvray.io import storage

__all__ = ["issue_rows", "read_coco", "read_mot_sequence", "read_video"]

_EMPTY = np.zeros((0, 0, 3), np.uint8)


def _load(uri: str, name: str) -> tuple[np.ndarray, str, str]:
    """(image, rule, error) — rule/error empty on success."""
    try:
        return decode_image(storage.read_bytes(uri), name), "", ""
    except ImageDecodeError as exc:
        return _EMPTY, exc.rule, str(exc)
    except storage.StorageError as exc:
        return _EMPTY, "image.missing", str(exc)


def _decode_batch(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    images, ok, rules, errors = [], [], [], []
    for uri, name in zip(batch["uri"], batch["file_name"]):
        if not uri:
            img, rule, err = _EMPTY, "image.path_escape", f"{name}: image path escapes the dataset root"
        else:
            img, rule, err = _load(str(uri), str(name))
        images.append(img)
        ok.append(not err)
        rules.append(rule)
        errors.append(err)
    out = dict(batch)
    out["image"] = np.array(images + [None], dtype=object)[:-1]  # ragged: object array of HxWx3
    out["ok"] = np.array(ok)
    out["rule"] = np.array(rules, dtype=object)
    out["error"] = np.array(errors, dtype=object)
    return out


def read_coco(annotations_uri: str, images_root: str, *, split: str = "", decode: bool = True,
              override_num_blocks: int | None = None):
    """A Ray Dataset with one row per image of a COCO file (local or S3).

    Columns: image_id, file_name, uri, height, width, split, annotations (JSON text), and when
    ``decode`` is set: image (uint8 HxWx3 RGB), ok, rule, error.
    """
    import ray

    coco = load_coco(annotations_uri)
    items = []
    for rec in image_records(coco):
        try:
            uri = safe_join(images_root, rec["file_name"])
        except DatasetError:
            uri = ""
        items.append({
            "image_id": int(rec["image_id"]) if rec["image_id"] is not None else -1,
            "file_name": str(rec["file_name"]),
            "uri": uri,
            "height": int(rec["height"] or 0),
            "width": int(rec["width"] or 0),
            "split": split,
            "annotations": json.dumps(rec["annotations"]),
            "group": str(rec.get("scene_id", rec.get("video_id", ""))),
        })
    n_blocks = override_num_blocks or max(1, min(len(items), 64, len(items) // 8 or 1))
    ds = ray.data.from_items(items, override_num_blocks=n_blocks)
    if decode:
        ds = ds.map_batches(_decode_batch, batch_size=16, batch_format="numpy")
    return ds


def read_mot_sequence(seq_uri: str):
    """Ordered per-frame rows (sequence, frame, timestamp, image, ok, rule, error) of one sequence."""
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    info, recs = frame_records(seq_uri)
    for r in recs:
        r["file_name"] = f"{info.name}/{os.path.basename(r['uri'])}"
    return ray.data.from_items(recs).map_batches(_decode_batch, batch_size=16, batch_format="numpy")


def _video_frames(row: dict[str, Any]) -> list[dict[str, Any]]:
    import cv2

    uri = row["uri"]
    with tempfile.TemporaryDirectory() as tmp:
        path = storage.local_copy(uri, tmp)
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            return [{"video": uri, "frame": -1, "timestamp": -1.0, "image": _EMPTY, "ok": False,
                     "rule": "video.unreadable", "error": f"{uri}: cannot open video"}]
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        out, i = [], 0
        while True:
            got, frame = cap.read()
            if not got:
                break
            i += 1
            ts = (i - 1) / fps if fps > 0 else float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
            out.append({"video": uri, "frame": i, "timestamp": ts,
                        "image": cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), "ok": True, "rule": "", "error": ""})
        cap.release()
    return out


def read_video(uris: list[str]):
    """Ordered per-frame rows of one or more videos (frame index from 1, timestamp in seconds)."""
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    return ray.data.from_items([{"uri": u} for u in uris], override_num_blocks=max(1, len(uris))).flat_map(_video_frames)


def issue_rows(rows: list[dict[str, Any]], stage: str = "ingest") -> list[dict[str, Any]]:
    """Issues-table rows for the failed rows of an ingest dataset."""
    from dataclasses import asdict

    from cvray.runs.issues import issue

    return [asdict(issue(stage, r.get("rule") or "image.unreadable", r.get("error") or "unreadable",
                         file=r.get("uri") or r.get("file_name"),
                         image_id=None if r.get("image_id") is None else int(r["image_id"])))
            for r in rows if not r.get("ok", True)]
