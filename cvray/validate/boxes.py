"""Box rules: finite, positive size, inside the image (with tolerance), pixel not normalised, tiny."""
from __future__ import annotations

import math
from numbers import Real

from cvray.runs.issues import Issue
from cvray.validate.config import ValidateConfig
from cvray.validate.rules import issue

__all__ = ["check_box"]


def _looks_normalised(x: float, y: float, w: float, h: float, width: int, height: int) -> bool:
    """All four values in [0, 1] with a sub-pixel area, in an image of more than a few pixels:
    a [0, 1]-normalised box written where COCO expects pixels."""
    return (0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1 and w * h < 1
            and min(width, height) > 2)


def check_box(ann: dict, img: dict, file: str, cfg: ValidateConfig) -> list[Issue]:
    """Issues of one annotation's ``bbox`` against its image record (schema already passed)."""
    aid, iid = ann["id"], ann["image_id"]
    bbox = ann["bbox"]
    kw = {"file": file, "image_id": iid, "annotation_id": aid}
    if len(bbox) != 4 or not all(isinstance(v, Real) and not isinstance(v, bool) for v in bbox):
        return [issue("schema.wrong_type", f"{file}: annotation {aid} bbox={bbox!r}, expected 4 "
                      "numbers [x, y, w, h]", **kw)]
    x, y, w, h = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return [issue("box.non_finite", f"{file}: annotation {aid} (image {iid}) bbox={bbox!r} "
                      "has NaN/inf", **kw)]
    if w <= 0 or h <= 0:
        return [issue("box.non_positive", f"{file}: annotation {aid} (image {iid}) bbox "
                      f"width={w:g} height={h:g}, expected > 0", **kw)]
    width, height = img["width"], img["height"]
    if _looks_normalised(x, y, w, h, width, height):
        return [issue("box.normalized_coordinates", f"{file}: annotation {aid} (image {iid}) "
                      f"bbox={bbox!r} looks normalised to [0, 1]; COCO boxes are pixels in a "
                      f"{width}x{height} image", **kw)]
    out = []
    tol = cfg.box_tolerance_px
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        out.append(issue("box.out_of_bounds", f"{file}: annotation {aid} (image {iid}) bbox "
                         f"[{x:g}, {y:g}, {w:g}, {h:g}] runs past the {width}x{height} image by more "
                         f"than {tol:g} px", **kw))
    if w * h < cfg.tiny_area:
        out.append(issue("box.tiny", f"{file}: annotation {aid} (image {iid}) bbox area "
                         f"{w * h:.3g} px^2 < {cfg.tiny_area:g}", **kw))
    return out
