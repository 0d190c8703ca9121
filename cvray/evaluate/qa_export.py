"""QA export for one image: class-id mask PNG, overlay PNG with boundaries, JSON summary.

The mask PNG stores class ids losslessly (8-bit when ids fit, else 16-bit). The overlay blends a
fixed per-class colour over the image and draws each class's boundary (4-neighbour, as in the
boundary F-score) at full colour. The summary counts pixels and instances per class and lists
each instance's area, box and mean confidence, plus the post-processing steps applied.
"""
from __future__ import annotations

import json

import cv2
import numpy as np

from cvray.evaluate.semantic import boundary_map
from cvray.evaluate.seg_post import SegInstance

__all__ = ["class_color", "mask_png", "overlay_png", "qa_summary", "export_qa", "write_qa"]


def class_color(class_id: int) -> tuple[int, int, int]:
    """A fixed, well-spread RGB colour per class id (golden-ratio hue walk; 0 → black)."""
    if class_id == 0:
        return (0, 0, 0)
    hue = int((class_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 200, 255]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def mask_png(labels: np.ndarray) -> bytes:
    labels = np.asarray(labels)
    if labels.min(initial=0) < 0:
        raise ValueError("class ids must be >= 0 to store as PNG")
    arr = labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16)
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def overlay_png(image: np.ndarray, labels: np.ndarray, *, alpha: float = 0.45, background_id: int = 0) -> bytes:
    """RGB image + translucent class colours + opaque class boundaries → PNG bytes."""
    img = np.asarray(image, np.uint8)
    if img.shape[:2] != labels.shape:
        raise ValueError(f"image {img.shape[:2]} and mask {labels.shape} differ in size")
    out = img.astype(np.float32)
    for c in np.unique(labels):
        if c == background_id:
            continue
        m = labels == c
        col = np.array(class_color(int(c)), np.float32)
        out[m] = (1 - alpha) * out[m] + alpha * col
        out[boundary_map(m)] = col
    ok, buf = cv2.imencode(".png", cv2.cvtColor(out.round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def qa_summary(image_id, labels: np.ndarray, instances: list[SegInstance], steps: list[dict],
               class_names: dict[int, str] | None = None) -> dict:
    ids, counts = np.unique(labels, return_counts=True)
    names = class_names or {}
    per_class_inst: dict[int, int] = {}
    for inst in instances:
        per_class_inst[inst.class_id] = per_class_inst.get(inst.class_id, 0) + 1
    return {
        "image_id": image_id, "height": int(labels.shape[0]), "width": int(labels.shape[1]),
        "pixels": {str(int(i)): int(n) for i, n in zip(ids, counts)},
        "instances_per_class": {str(k): v for k, v in sorted(per_class_inst.items())},
        "instances": [{"class_id": i.class_id, "class": names.get(i.class_id, str(i.class_id)),
                       "area": i.area, "bbox": list(i.bbox),
                       "confidence": None if i.confidence is None else round(i.confidence, 6)}
                      for i in instances],
        "postprocess": steps,
    }


def export_qa(image_id, image: np.ndarray, labels: np.ndarray, instances: list[SegInstance],
              steps: list[dict], class_names: dict[int, str] | None = None) -> dict[str, bytes]:
    """The three files for one image, keyed by suggested file name."""
    stem = str(image_id)
    return {f"{stem}_mask.png": mask_png(labels), f"{stem}_overlay.png": overlay_png(image, labels),
            f"{stem}.json": json.dumps(qa_summary(image_id, labels, instances, steps, class_names),
                                       indent=2).encode()}


def write_qa(run, image_id, image: np.ndarray, prediction: np.ndarray, cfg=None,
             class_names: dict[int, str] | None = None) -> dict:
    """Post-process one semantic prediction and write its QA files into the run.

    ``prediction`` is (C, H, W) scores or an (H, W) label map; files land under
    ``artifacts/qa/``; returns the JSON summary (with the post-processing steps recorded).
    """
    from cvray.evaluate.seg_post import SegPostConfig, postprocess_semantic

    labels, _conf, instances, steps = postprocess_semantic(prediction, cfg or SegPostConfig())
    files = export_qa(image_id, image, labels, instances, steps, class_names)
    for name, data in files.items():
        run.write_artifact(f"qa/{name}", data)
    return json.loads(files[f"{image_id}.json"])
