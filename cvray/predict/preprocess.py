"""Read + decode + letterbox: the CPU stage of batch inference, free of torch.

The Ray Data read tasks run these functions; their worker processes import this module (and
the decoders), not torch -- importing torch costs seconds per process on a small machine, which
would delay the first batch reaching the model actors.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cvray.predict.options import GeometryConfig
from cvray.predict.geometry import Letterbox

__all__ = ["preprocess_row", "preprocess_batch", "read_preprocess"]


def preprocess_row(row: dict[str, Any], geometry: GeometryConfig) -> dict[str, Any]:
    """Letterbox one decoded row; failed rows get a zero image of the input size."""
    img = row["image"]
    out = {k: row[k] for k in ("image_id", "file_name", "uri", "frame_index", "timestamp_s", "ok", "rule", "error")}
    H, W = geometry.size
    if row["ok"] and img.ndim == 3 and img.shape[0] > 0:
        lb = Letterbox.fit(img.shape[:2], (H, W), mode=geometry.mode, pad_value=geometry.pad_value)
        out["image"] = lb.apply_image(img)
        out.update(height=img.shape[0], width=img.shape[1], scale_x=lb.scale_x, scale_y=lb.scale_y,
                   pad_x=lb.pad_x, pad_y=lb.pad_y)
    else:
        shape = (H, W, 3) if geometry.mode != "none" else (1, 1, 3)
        out["image"] = np.zeros(shape, np.uint8)
        out.update(height=0, width=0, scale_x=1.0, scale_y=1.0, pad_x=0, pad_y=0, ok=False)
    return out


def preprocess_batch(batch: dict[str, np.ndarray], geometry: GeometryConfig) -> dict[str, np.ndarray]:
    """Column batch version of :func:`preprocess_row` (stacked images when sizes agree)."""
    n = len(batch["image_id"])
    rows = [preprocess_row({k: batch[k][i] for k in batch}, geometry) for i in range(n)]
    out: dict[str, np.ndarray] = {}
    for k in rows[0] if rows else ():
        vals = [r[k] for r in rows]
        if k == "image":
            shapes = {v.shape for v in vals}
            out[k] = np.stack(vals) if len(shapes) == 1 else np.array(vals + [None], dtype=object)[:-1]
        elif k in ("file_name", "uri", "rule", "error"):
            out[k] = np.array(vals, dtype=object)
        else:
            out[k] = np.array(vals)
    return out


def read_preprocess(unit: dict[str, Any], geometry: GeometryConfig, drift: bool = False) -> list[dict[str, Any]]:
    """Read + decode + letterbox one input unit (an image, or a video's frame range); rows carry
    their sequence number ``seq`` (``unit["seq_base"] + k``). ``drift``: rows also carry the
    frame's quality features (:func:`cvray.drift.stream.frame_features`, on the decoded image
    before letterboxing), computed here in the parallel read tasks."""
    from cvray.predict.sources import read_unit

    rows = []
    for k, row in enumerate(read_unit(unit, with_bytes=drift)):
        out = preprocess_row(row, geometry)
        out["seq"] = unit["seq_base"] + k
        if drift:
            from cvray.drift.stream import frame_features

            out.update(frame_features(row["image"], row.get("encoded")))
        rows.append(out)
    return rows
