"""Mask rules: polygons with >= 3 points, non-empty, RLE size equal to the image, areas consistent.

Mask areas come from pycocotools itself (``frPyObjects`` / ``area``), so "consistent" means
consistent with what COCO evaluation will compute.
"""
from __future__ import annotations

import math
from numbers import Real

from pycocotools import mask as mask_utils

from cvray.runs.issues import Issue
from cvray.validate.config import ValidateConfig
from cvray.validate.rules import issue

__all__ = ["check_mask", "mask_area"]


def _num(v) -> bool:
    if type(v) is float or type(v) is int:  # fast path: JSON numbers
        return math.isfinite(v)
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v))


def mask_area(segm, height: int, width: int) -> float:
    """Pixel area of a COCO segmentation as pycocotools rasterises it (raises on bad input)."""
    if isinstance(segm, list):
        rles = mask_utils.frPyObjects(segm, height, width)
        return float(mask_utils.area(mask_utils.merge(rles)))
    if isinstance(segm["counts"], list):
        rle = mask_utils.frPyObjects(segm, height, width)
    else:
        counts = segm["counts"]
        rle = {"size": segm["size"], "counts": counts.encode() if isinstance(counts, str) else counts}
    return float(mask_utils.area(rle))


def check_mask(ann: dict, img: dict, file: str, cfg: ValidateConfig) -> list[Issue]:
    """Issues of one annotation's ``segmentation`` (absent segmentation = box-only, not checked)."""
    if "segmentation" not in ann:
        return []
    segm = ann["segmentation"]
    aid, iid = ann["id"], ann["image_id"]
    kw = {"file": file, "image_id": iid, "annotation_id": aid}
    height, width = img["height"], img["width"]
    where = f"{file}: annotation {aid} (image {iid})"
    # 1. structure
    if isinstance(segm, list):
        if not segm:
            return [issue("mask.empty", f"{where}: empty segmentation list", **kw)]
        for j, poly in enumerate(segm):
            if not isinstance(poly, list) or not all(_num(v) for v in poly):
                return [issue("schema.wrong_type", f"{where}: polygon {j} is not a flat list of "
                              "finite numbers", **kw)]
            if len(poly) < 6 or len(poly) % 2:
                return [issue("mask.polygon_too_few_points", f"{where}: polygon {j} has "
                              f"{len(poly)} coordinates; a polygon needs >= 3 (x, y) points", **kw)]
    elif isinstance(segm, dict):
        size, counts = segm.get("size"), segm.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and all(_num(v) for v in size)) \
                or not isinstance(counts, (list, str)):
            return [issue("mask.invalid_rle", f"{where}: RLE needs size [h, w] and counts "
                          "(list or string)", **kw)]
        if [int(size[0]), int(size[1])] != [height, width]:
            return [issue("mask.rle_size_mismatch", f"{where}: RLE size {size} (h, w) differs "
                          f"from the image size [{height}, {width}]", **kw)]
        if isinstance(counts, list) and sum(counts) != height * width:
            return [issue("mask.invalid_rle", f"{where}: RLE counts sum to {sum(counts)}, expected "
                          f"{height * width}", **kw)]
    else:
        return [issue("schema.wrong_type", f"{where}: segmentation is a {type(segm).__name__}, "
                      "expected a polygon list or an RLE object", **kw)]
    # 2. area (pycocotools rasterisation)
    try:
        area = mask_area(segm, height, width)
    except Exception as exc:  # pycocotools raises bare Exceptions / TypeErrors on bad RLE
        return [issue("mask.invalid_rle", f"{where}: segmentation cannot be decoded ({exc})", **kw)]
    if area <= 0:
        return [issue("mask.empty", f"{where}: segmentation covers no pixel", **kw)]
    out = []
    if _num(ann.get("area")) and abs(float(ann["area"]) - area) > max(
            cfg.area_abs_tolerance, cfg.area_rel_tolerance * area):
        out.append(issue("mask.area_field_mismatch", f"{where}: area field {float(ann['area']):g} "
                         f"but the mask covers {area:g} px", **kw))
    bbox = ann.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4 and all(_num(v) for v in bbox) \
            and bbox[2] > 0 and bbox[3] > 0:
        box_area = float(bbox[2]) * float(bbox[3])
        fill = area / box_area
        too_sparse = fill < cfg.mask_fill_min and not ann.get("iscrowd")
        if too_sparse or area > cfg.mask_fill_max * box_area + cfg.area_abs_tolerance:
            out.append(issue("mask.area_box_mismatch", f"{where}: mask area {area:g} px is "
                             f"{fill:.3g} x the box area {box_area:g} px", **kw))
    return out
