"""Failure examples rendered as small overlays: GT box green, detection red, crop around both."""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["render_failure", "select_failures"]

GT_COLOR = (40, 200, 60)
DT_COLOR = (230, 40, 40)


def render_failure(image: np.ndarray, gt_box: list[float] | None, dt_box: list[float] | None,
                   caption: str, *, out_size: int = 192, margin: float = 0.5) -> bytes:
    """PNG: crop around the union of the (xywh) boxes with a margin, boxes drawn, caption below."""
    h, w = image.shape[:2]
    boxes = [b for b in (gt_box, dt_box) if b is not None]
    x1 = min(b[0] for b in boxes)
    y1 = min(b[1] for b in boxes)
    x2 = max(b[0] + b[2] for b in boxes)
    y2 = max(b[1] + b[3] for b in boxes)
    mx, my = (x2 - x1) * margin + 8, (y2 - y1) * margin + 8
    cx1, cy1 = int(max(0, x1 - mx)), int(max(0, y1 - my))
    cx2, cy2 = int(min(w, x2 + mx)), int(min(h, y2 + my))
    crop = np.ascontiguousarray(image[cy1:max(cy2, cy1 + 1), cx1:max(cx2, cx1 + 1)])
    s = out_size / max(crop.shape[:2])
    crop = cv2.resize(crop, (max(1, int(crop.shape[1] * s)), max(1, int(crop.shape[0] * s))),
                      interpolation=cv2.INTER_NEAREST if s >= 1 else cv2.INTER_AREA)
    for b, col in ((gt_box, GT_COLOR), (dt_box, DT_COLOR)):
        if b is None:
            continue
        p1 = (int((b[0] - cx1) * s), int((b[1] - cy1) * s))
        p2 = (int((b[0] + b[2] - cx1) * s), int((b[1] + b[3] - cy1) * s))
        cv2.rectangle(crop, p1, p2, col, 2)
    canvas = np.full((crop.shape[0] + 18, max(crop.shape[1], out_size), 3), 255, np.uint8)
    canvas[:crop.shape[0], :crop.shape[1]] = crop
    cv2.putText(canvas, caption[:40], (2, canvas.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return buf.tobytes()


def select_failures(errors: list[dict], k: int) -> dict[str, list[dict]]:
    """Top-k per error type: the most confident mistakes; for missed objects the largest."""
    out: dict[str, list[dict]] = {}
    for r in errors:
        out.setdefault(r["type"], []).append(r)
    for t, rows in out.items():
        key = (lambda r: -(r.get("gt_area") or 0.0)) if t == "missed" else (lambda r: -(r["score"] or 0.0))
        out[t] = sorted(rows, key=key)[:k]
    return out
