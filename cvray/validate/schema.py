"""Schema rules: required keys, types, unique ids, references between images/annotations/categories.

:func:`check_schema` never raises on bad content: it returns the issues plus an index of the
records that are sound enough for the geometric rules (boxes, masks) to look at.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

from cvray.runs.issues import Issue
from cvray.validate.rules import issue

__all__ = ["SchemaIndex", "check_schema"]

_IMAGE_KEYS = {"id": int, "file_name": str, "height": int, "width": int}
_CATEGORY_KEYS = {"id": int, "name": str}
_ANN_KEYS = {"id": int, "image_id": int, "category_id": int, "bbox": list, "area": Real}


@dataclass
class SchemaIndex:
    """Records that passed the schema rules, keyed by id (first occurrence wins on duplicates)."""

    images: dict[int, dict] = field(default_factory=dict)
    categories: dict[int, dict] = field(default_factory=dict)
    annotations: list[dict] = field(default_factory=list)  # sound ones, in file order
    n_annotations: int = 0


def _is(value: Any, typ: type) -> bool:
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typ is Real:
        return isinstance(value, Real) and not isinstance(value, bool)
    return isinstance(value, typ)


def _check_record(rec: Any, keys: dict[str, type], kind: str, index: int, file: str,
                  out: list[Issue], image_id=None, annotation_id=None) -> bool:
    """Required keys present with the right types; issues name the record by id or position."""
    if not isinstance(rec, dict):
        out.append(issue("schema.wrong_type", f"{file}: {kind} #{index} is a "
                         f"{type(rec).__name__}, expected an object", file=file))
        return False
    name = f"{kind} id={rec.get('id')!r}" if "id" in rec else f"{kind} #{index}"
    ok = True
    for key, typ in keys.items():
        if key not in rec:
            out.append(issue("schema.missing_key", f"{file}: {name} lacks required key {key!r}",
                             file=file, image_id=image_id, annotation_id=annotation_id))
            ok = False
        elif not _is(rec[key], typ):
            out.append(issue("schema.wrong_type", f"{file}: {name} has {key}={rec[key]!r} "
                             f"({type(rec[key]).__name__}), expected {typ.__name__}",
                             file=file, image_id=image_id, annotation_id=annotation_id))
            ok = False
    return ok


def _ids(v):
    return v if _is(v, int) else None


def check_schema(doc: Any, file: str) -> tuple[list[Issue], SchemaIndex]:
    """Apply the schema rules to a parsed COCO document."""
    out: list[Issue] = []
    idx = SchemaIndex()
    if not isinstance(doc, dict):
        out.append(issue("schema.invalid_json", f"{file}: top level is a {type(doc).__name__}, "
                         "expected an object with images/annotations/categories", file=file))
        return out, idx
    lists = {}
    for key in ("images", "annotations", "categories"):
        if key not in doc:
            out.append(issue("schema.missing_key", f"{file}: missing top-level key {key!r}", file=file))
            lists[key] = []
        elif not isinstance(doc[key], list):
            out.append(issue("schema.wrong_type", f"{file}: top-level {key!r} is a "
                             f"{type(doc[key]).__name__}, expected a list", file=file))
            lists[key] = []
        else:
            lists[key] = doc[key]

    # 1. images: keys, types, positive sizes, unique ids and file names
    files = Counter()
    for i, img in enumerate(lists["images"]):
        iid = _ids(img.get("id")) if isinstance(img, dict) else None
        if not _check_record(img, _IMAGE_KEYS, "image", i, file, out, image_id=iid):
            continue
        if img["height"] <= 0 or img["width"] <= 0:
            out.append(issue("schema.wrong_type", f"{file}: image id={iid} declares size "
                             f"{img['width']}x{img['height']}, expected positive", file=file, image_id=iid))
            continue
        if iid in idx.images:
            out.append(issue("schema.duplicate_id", f"{file}: image id {iid} appears more than once",
                             file=file, image_id=iid))
            continue
        idx.images[iid] = img
        files[img["file_name"]] += 1
        if files[img["file_name"]] == 2:
            out.append(issue("schema.duplicate_file", f"{file}: {img['file_name']!r} is named by "
                             "more than one image record", file=file, image_id=iid))

    # 2. categories
    for i, cat in enumerate(lists["categories"]):
        if not _check_record(cat, _CATEGORY_KEYS, "category", i, file, out):
            continue
        if cat["id"] in idx.categories:
            out.append(issue("schema.duplicate_id", f"{file}: category id {cat['id']} appears more "
                             "than once", file=file))
            continue
        idx.categories[cat["id"]] = cat

    # 3. annotations: keys, types, unique ids, references, iscrowd
    seen: set[int] = set()
    idx.n_annotations = len(lists["annotations"])
    for i, ann in enumerate(lists["annotations"]):
        aid = _ids(ann.get("id")) if isinstance(ann, dict) else None
        iid = _ids(ann.get("image_id")) if isinstance(ann, dict) else None
        if not _check_record(ann, _ANN_KEYS, "annotation", i, file, out, image_id=iid,
                             annotation_id=aid):
            continue
        if aid in seen:
            out.append(issue("schema.duplicate_id", f"{file}: annotation id {aid} appears more "
                             "than once", file=file, image_id=iid, annotation_id=aid))
            continue
        seen.add(aid)
        sound = True
        if iid not in idx.images:
            out.append(issue("schema.missing_image", f"{file}: annotation {aid} points to image id "
                             f"{iid}, which does not exist", file=file, image_id=iid, annotation_id=aid))
            sound = False
        if ann["category_id"] not in idx.categories:
            out.append(issue("schema.missing_category", f"{file}: annotation {aid} points to "
                             f"category id {ann['category_id']}, which does not exist", file=file,
                             image_id=iid, annotation_id=aid))
            sound = False
        if "iscrowd" not in ann:
            out.append(issue("schema.missing_iscrowd", f"{file}: annotation {aid} has no iscrowd "
                             "(pycocotools would silently treat it as 0)", file=file, image_id=iid,
                             annotation_id=aid))
        elif ann["iscrowd"] not in (0, 1) or isinstance(ann["iscrowd"], float):
            out.append(issue("schema.wrong_type", f"{file}: annotation {aid} has iscrowd="
                             f"{ann['iscrowd']!r}, expected 0 or 1", file=file, image_id=iid,
                             annotation_id=aid))
        if not math.isfinite(float(ann["area"])):
            out.append(issue("schema.wrong_type", f"{file}: annotation {aid} has area="
                             f"{ann['area']!r}, expected a finite number", file=file, image_id=iid,
                             annotation_id=aid))
            sound = False
        if sound:
            idx.annotations.append(ann)
    return out, idx
