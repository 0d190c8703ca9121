"""Ingest rows (pure): decode a batch of image rows, extract a video's frames, and turn failed
rows into issues. The Ray Data readers that map these over a dataset are in
:mod:`cvray.data.distributed` (``read_coco``, ``read_mot_sequence``, ``read_video``; still
importable from here).

An image that cannot be read or decoded becomes a row with ``ok=False`` and the reason (never a
crash, never a silently dropped row); :func:`issue_rows` turns those rows into issues-table rows.
"""
from __future__ import annotations

import tempfile
from typing import Any

import numpy as np

from cvray.data.decode import ImageDecodeError, decode_image
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


def issue_rows(rows: list[dict[str, Any]], stage: str = "ingest") -> list[dict[str, Any]]:
    """Issues-table rows for the failed rows of an ingest dataset."""
    from dataclasses import asdict

    from cvray.runs.issues import issue

    return [asdict(issue(stage, r.get("rule") or "image.unreadable", r.get("error") or "unreadable",
                         file=r.get("uri") or r.get("file_name"),
                         image_id=None if r.get("image_id") is None else int(r["image_id"])))
            for r in rows if not r.get("ok", True)]


_MOVED = ("read_coco", "read_mot_sequence", "read_video")


def __getattr__(name: str):
    """The Ray readers moved to :mod:`cvray.data.distributed`; the old import path still works
    (tests/test_ingest.py imports them from here)."""
    if name in _MOVED:
        from cvray.data import distributed

        return getattr(distributed, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
