"""Detection confusion matrix with a background row and column (an accumulator).

Rows are the true class, columns the predicted class; the last row/column is "background".
Per image, detections at or above ``score_threshold`` are matched to GT class-agnostically:
all pairs with IoU >= ``iou_threshold`` taken greedily by decreasing IoU, each GT and detection at
most once. Matched pair → [gt class, predicted class]; unmatched GT → [gt class, background]
(missed); unmatched detection → [background, predicted class] (false alarm). Detections inside
crowd regions are ignored and crowd GT is never counted.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["ConfusionMatrix"]


class ConfusionMatrix:
    """Accumulator: ``reset / update / compute`` + ``combine``; partial = the count matrix."""

    def __init__(self, category_ids: list[int], *, iou_threshold: float = 0.5, score_threshold: float = 0.25):
        self.category_ids = [int(c) for c in category_ids]
        self._index = {c: i for i, c in enumerate(self.category_ids)}
        self.iou_threshold, self.score_threshold = iou_threshold, score_threshold
        self.reset()

    @property
    def labels(self) -> list[str]:
        return [str(c) for c in self.category_ids] + ["background"]

    def reset(self) -> None:
        n = len(self.category_ids) + 1
        self.matrix = np.zeros((n, n), dtype=np.int64)

    def update(self, gt_boxes: np.ndarray, gt_labels: np.ndarray, dt_boxes: np.ndarray,
               dt_scores: np.ndarray, dt_labels: np.ndarray, gt_crowd: np.ndarray | None = None) -> None:
        """One image; boxes COCO xywh."""
        bg = len(self.category_ids)
        gt_boxes = np.asarray(gt_boxes, float).reshape(-1, 4)
        gt_labels = np.asarray(gt_labels)
        crowd = np.zeros(len(gt_labels), bool) if gt_crowd is None else np.asarray(gt_crowd, bool)
        keep = np.asarray(dt_scores) >= self.score_threshold
        dt_boxes = np.asarray(dt_boxes, float).reshape(-1, 4)[keep]
        dt_labels = np.asarray(dt_labels)[keep]
        reg = np.flatnonzero(~crowd)
        ious = np.asarray(mask_utils.iou(dt_boxes.tolist(), gt_boxes[reg].tolist(),
                                         np.zeros(len(reg), np.uint8))).reshape(len(dt_boxes), len(reg)) \
            if len(dt_boxes) and len(reg) else np.zeros((len(dt_boxes), len(reg)))
        d_used = np.zeros(len(dt_boxes), bool)
        g_used = np.zeros(len(reg), bool)
        pairs = np.argwhere(ious >= self.iou_threshold)
        for d, g in pairs[np.argsort(-ious[pairs[:, 0], pairs[:, 1]], kind="mergesort")]:
            if d_used[d] or g_used[g]:
                continue
            d_used[d] = g_used[g] = True
            self.matrix[self._index[int(gt_labels[reg[g]])], self._index[int(dt_labels[d])]] += 1
        for g in np.flatnonzero(~g_used):
            self.matrix[self._index[int(gt_labels[reg[g]])], bg] += 1
        # unmatched detections in a crowd region are not false alarms
        if crowd.any() and len(dt_boxes):
            c_iou = np.asarray(mask_utils.iou(dt_boxes.tolist(), gt_boxes[crowd].tolist(),
                                              np.ones(int(crowd.sum()), np.uint8))).reshape(len(dt_boxes), -1)
            in_crowd = (c_iou >= self.iou_threshold).any(1)
        else:
            in_crowd = np.zeros(len(dt_boxes), bool)
        for d in np.flatnonzero(~d_used & ~in_crowd):
            self.matrix[bg, self._index[int(dt_labels[d])]] += 1

    def update_coco(self, gt: dict, results: list[dict]) -> None:
        """Feed a whole COCO GT dict and results list."""
        by_img: dict[int, list[dict]] = {}
        for r in results:
            by_img.setdefault(r["image_id"], []).append(r)
        anns: dict[int, list[dict]] = {}
        for a in gt["annotations"]:
            anns.setdefault(a["image_id"], []).append(a)
        for im in gt["images"]:
            g = anns.get(im["id"], [])
            d = by_img.get(im["id"], [])
            self.update([a["bbox"] for a in g], [a["category_id"] for a in g], [r["bbox"] for r in d],
                        [r["score"] for r in d], [r["category_id"] for r in d],
                        [bool(a.get("iscrowd", 0)) for a in g])

    def partial(self) -> np.ndarray:
        return self.matrix.copy()

    def combine(self, partials: Iterable[np.ndarray]) -> None:
        for p in partials:
            self.matrix += np.asarray(p, dtype=np.int64)

    def compute(self) -> np.ndarray:
        return self.matrix.copy()

    def to_rows(self) -> list[dict]:
        names = self.category_ids + [None]
        return [{"true_category_id": names[i], "pred_category_id": names[j], "count": int(self.matrix[i, j])}
                for i in range(len(names)) for j in range(len(names)) if self.matrix[i, j]]
