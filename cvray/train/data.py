"""COCO records -> torch training samples (pure core: no Ray).

A record is cvray's per-image COCO dict (``image_id, file_name, height, width, annotations``).
Targets follow torchvision: ``boxes`` xyxy float32, ``labels`` int64 in 1..K (contiguous, in
category-id order), ``masks`` uint8 NxHxW decoded with pycocotools; for semantic segmentation a
``sem_seg`` HxW int64 map (0 = background, crowd regions = ``ignore_index``). Crowd annotations
never become training instances (COCO's convention: they are "ignore" regions for evaluation).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from pycocotools import mask as mask_utils

from cvray.data.decode import ImageDecodeError, decode_image
from cvray.io import storage
from cvray.runs.issues import Issue, issue

__all__ = ["CategoryMap", "RecordError", "Sample", "annotation_mask", "collate", "load_sample",
           "record_to_target", "samples"]


class RecordError(ValueError):
    """A record cannot become a training sample; names image and annotation."""

    def __init__(self, message: str, *, rule: str, image_id: Any = None, annotation_id: Any = None,
                 file: str | None = None):
        super().__init__(message)
        self.rule, self.image_id, self.annotation_id, self.file = rule, image_id, annotation_id, file

    def issue(self, stage: str = "train") -> Issue:
        """The issue row (rule and severity from :data:`cvray.runs.issues.RULES`)."""
        return issue(stage, self.rule, str(self), file=self.file, image_id=self.image_id,
                     annotation_id=self.annotation_id)


@dataclass(frozen=True)
class CategoryMap:
    """COCO category ids <-> contiguous model labels 1..K (0 is background)."""

    ids: tuple[int, ...]
    names: tuple[str, ...]

    @classmethod
    def from_coco(cls, coco: dict) -> "CategoryMap":
        cats = sorted(coco["categories"], key=lambda c: c["id"])
        return cls(tuple(int(c["id"]) for c in cats), tuple(str(c.get("name", c["id"])) for c in cats))

    @property
    def num_classes(self) -> int:
        return len(self.ids)

    def label(self, category_id: int) -> int:
        return self.ids.index(int(category_id)) + 1

    def category(self, label: int) -> int:
        return self.ids[int(label) - 1]


def annotation_mask(ann: dict, h: int, w: int) -> np.ndarray:
    """Binary HxW mask of one annotation (polygons, compressed or uncompressed RLE)."""
    seg = ann.get("segmentation")
    if isinstance(seg, list):
        if not seg:
            raise ValueError("empty polygon list")
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):
        rle = mask_utils.frPyObjects(seg, h, w)
    elif isinstance(seg, dict):
        rle = dict(seg, counts=seg["counts"].encode() if isinstance(seg["counts"], str) else seg["counts"])
    else:
        raise ValueError(f"segmentation of type {type(seg).__name__}")
    m = mask_utils.decode(rle)
    if m.shape != (h, w):
        raise ValueError(f"mask size {m.shape} differs from image size {(h, w)}")
    return m.astype(np.uint8)


def record_to_target(rec: dict, cats: CategoryMap, *, task: str = "instance",
                     ignore_index: int = 255) -> dict[str, torch.Tensor]:
    """Training target of one record (see module docstring)."""
    h, w = int(rec["height"]), int(rec["width"])
    boxes, labels, masks = [], [], []
    sem = np.zeros((h, w), np.int64) if task == "semantic" else None
    crowd = np.zeros((h, w), bool) if task == "semantic" else None
    for ann in rec["annotations"]:
        aid = ann.get("id")
        try:
            cat = int(ann["category_id"])
            if cat not in cats.ids:
                raise ValueError(f"unknown category_id {cat}")
            x, y, bw, bh = (float(v) for v in ann["bbox"])
            need_mask = task != "detection" or ann.get("iscrowd")
            m = annotation_mask(ann, h, w) if need_mask else None
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"image {rec['image_id']} ({rec.get('file_name')}), annotation {aid}: "
                              f"{exc}", rule="annotation.invalid", image_id=rec["image_id"],
                              annotation_id=aid, file=rec.get("file_name")) from exc
        if ann.get("iscrowd"):
            if crowd is not None:
                crowd |= m.astype(bool)
            continue
        if bw <= 0 or bh <= 0:
            continue  # degenerate boxes are a QA finding (cvray validate), not a training target
        if sem is not None:
            sem[m.astype(bool)] = cats.label(cat)
            continue
        boxes.append([x, y, x + bw, y + bh])
        labels.append(cats.label(cat))
        if task == "instance":
            masks.append(m)
    if sem is not None:
        sem[crowd] = ignore_index
        return {"sem_seg": torch.from_numpy(sem), "image_id": torch.tensor(int(rec["image_id"]))}
    target = {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "image_id": torch.tensor(int(rec["image_id"])),
    }
    if task == "instance":
        target["masks"] = torch.from_numpy(np.stack(masks)) if masks else torch.zeros((0, h, w), dtype=torch.uint8)
    return target


@dataclass
class Sample:
    image: torch.Tensor  # float CHW in [0, 1]
    target: dict[str, torch.Tensor]
    record: dict


def load_sample(rec: dict, images_root: str | None, cats: CategoryMap, *, task: str,
                ignore_index: int = 255, uri: str | None = None) -> Sample:
    """Read and decode the image of ``rec`` and build its target; :class:`RecordError` on failure."""
    from cvray.data.coco import DatasetError, safe_join

    try:
        uri = uri or safe_join(images_root, rec["file_name"])
        img = decode_image(storage.read_bytes(uri), rec["file_name"])
    except (ImageDecodeError, storage.StorageError, DatasetError) as exc:
        raise RecordError(str(exc), rule=getattr(exc, "rule", "image.unreadable"),
                          image_id=rec.get("image_id"), file=rec.get("file_name")) from exc
    if img.shape[:2] != (int(rec["height"]), int(rec["width"])):
        raise RecordError(f"{rec['file_name']}: image is {img.shape[1]}x{img.shape[0]}, record says "
                          f"{rec['width']}x{rec['height']}", rule="image.size_mismatch",
                          image_id=rec.get("image_id"), file=rec.get("file_name"))
    target = record_to_target(rec, cats, task=task, ignore_index=ignore_index)
    image = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
    return Sample(image, target, rec)


def rows_to_records(rows: Iterable[dict]) -> Iterator[tuple[dict, str | None]]:
    """Ray Data rows from :func:`cvray.data.distributed.read_coco` (annotations as JSON) -> records."""
    for r in rows:
        rec = {"image_id": int(r["image_id"]), "file_name": str(r["file_name"]),
               "height": int(r["height"]), "width": int(r["width"]),
               "annotations": json.loads(r["annotations"]) if isinstance(r["annotations"], str)
               else list(r["annotations"])}
        yield rec, (str(r["uri"]) if r.get("uri") else None)


def samples(records: Iterable[tuple[dict, str | None]], images_root: str | None, cats: CategoryMap, *,
            task: str, ignore_index: int = 255, transform=None, issues: list | None = None) -> Iterator[Sample]:
    """Samples of ``records``; a bad record is skipped and appended to ``issues`` as an
    :class:`~cvray.runs.issues.Issue`."""
    for rec, uri in records:
        try:
            s = load_sample(rec, images_root, cats, task=task, ignore_index=ignore_index, uri=uri)
        except RecordError as exc:
            if issues is None:
                raise
            issues.append(exc.issue())
            continue
        if transform is not None:
            s.image, s.target = transform(s.image, s.target)
        yield s


def collate(batch: list[Sample]) -> tuple[list[torch.Tensor], list[dict]]:
    return [s.image for s in batch], [s.target for s in batch]
