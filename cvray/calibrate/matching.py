"""Detections matched to ground truth as flat per-detection arrays: the input of every calibration
metric and calibrator.

Calibration asks "of the detections scored ~0.8, are ~80 % correct?", so each detection needs a
correctness label. We take it from the COCO rule already used for AP (``cvray.evaluate.matching``:
class-aware, score-ordered greedy, one-to-one, crowd regions absorb detections which are then
ignored) at one stated IoU threshold, so "correct" here means exactly what AP50 counts as a TP.
Besides the TP flag we keep the IoU with the matched GT, which LaECE (Oksuz et al. 2023) needs,
and the box and image size, which D-ECE (Küppers et al. 2020) bins over.

Example::

    m = match_detections(coco_gt_dict, results, iou_thr=0.5, score_thr=0.05)
    m.tp.mean()              # precision of the kept detections
    m.for_class(3).scores    # one class
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from cvray.evaluate.matching import greedy_match, prepare_images

__all__ = ["MatchedDetections", "match_detections"]


@dataclass(frozen=True)
class MatchedDetections:
    """One row per non-ignored detection, in image-id order, then the caller's results order.

    ``boxes`` are COCO **xywh** in pixels (as in the results list); ``image_sizes`` is
    ``(width, height)`` of each detection's image; ``ious`` is the IoU with the matched GT and
    0 for false positives. ``iou_thr`` / ``score_thr`` record how the flags were made.
    """

    scores: np.ndarray        # (N,) float64
    labels: np.ndarray        # (N,) int64 category ids
    boxes: np.ndarray         # (N, 4) float64 xywh
    image_ids: np.ndarray     # (N,) int64
    image_sizes: np.ndarray   # (N, 2) float64 (width, height)
    tp: np.ndarray            # (N,) bool
    ious: np.ndarray          # (N,) float64
    iou_thr: float
    score_thr: float

    _ARRAYS = ("scores", "labels", "boxes", "image_ids", "image_sizes", "tp", "ious")

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def classes(self) -> list[int]:
        """Category ids that have at least one detection (sorted)."""
        return [int(c) for c in np.unique(self.labels)]

    def select(self, mask: np.ndarray) -> MatchedDetections:
        """The rows where ``mask`` (bool or index array) holds; thresholds kept."""
        return MatchedDetections(**{k: getattr(self, k)[mask] for k in self._ARRAYS},
                                 iou_thr=self.iou_thr, score_thr=self.score_thr)

    def for_class(self, category_id: int) -> MatchedDetections:
        """The detections of one category (possibly empty)."""
        return self.select(self.labels == category_id)

    def with_scores(self, scores: np.ndarray) -> MatchedDetections:
        """The same detections with new (e.g. calibrated) scores; matching is not redone."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != self.scores.shape:
            raise ValueError(f"scores has shape {scores.shape}, expected {self.scores.shape}")
        return MatchedDetections(**{k: getattr(self, k) for k in self._ARRAYS if k != "scores"},
                                 scores=scores, iou_thr=self.iou_thr, score_thr=self.score_thr)

    @staticmethod
    def concat(parts: list[MatchedDetections]) -> MatchedDetections:
        """Reduce per-shard matches (e.g. one per Ray block of images) into one; thresholds must agree."""
        if not parts:
            raise ValueError("concat needs at least one MatchedDetections")
        thr = {(p.iou_thr, p.score_thr) for p in parts}
        if len(thr) != 1:
            raise ValueError(f"parts were matched with different (iou_thr, score_thr): {sorted(thr)}")
        iou_thr, score_thr = thr.pop()
        return MatchedDetections(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in parts[0]._ARRAYS},
                                 iou_thr=iou_thr, score_thr=score_thr)

    def to_dict(self) -> dict:
        """Plain lists (JSON / Arrow friendly)."""
        return {f.name: (getattr(self, f.name).tolist() if f.name in self._ARRAYS else getattr(self, f.name))
                for f in fields(self)}


def match_detections(gt: dict, results: list[dict], *, iou_thr: float = 0.5, score_thr: float = 0.0,
                     max_dets: int = 100) -> MatchedDetections:
    """Match COCO-style ``results`` to the COCO ``gt`` dict; one row per non-ignored detection.

    Detections with ``score < score_thr`` are dropped before matching. Under COCO's score-ordered
    greedy rule this gives the same flags for the kept ones as matching everything and dropping
    afterwards (a lower-scored detection never changes a higher-scored one's match).
    """
    # 1. validate the stated thresholds and that every result belongs to a GT image
    if not 0.0 < iou_thr <= 1.0:
        raise ValueError(f"iou_thr must be in (0, 1], got {iou_thr}")
    if not 0.0 <= score_thr <= 1.0:
        raise ValueError(f"score_thr must be in [0, 1], got {score_thr}")
    sizes = {}
    for im in gt.get("images", []):
        if not (im.get("width", 0) > 0 and im.get("height", 0) > 0):
            raise ValueError(f"gt image {im.get('id')} needs positive 'width' and 'height' for box-relative bins")
        sizes[im["id"]] = (float(im["width"]), float(im["height"]))
    unknown = sorted({r["image_id"] for r in results} - set(sizes))
    if unknown:
        raise ValueError(f"results refer to image ids not in the ground truth: {unknown[:10]}")
    # 2. score threshold, then COCO's per-image preparation (IoU matrices, max_dets per class)
    kept = [r for r in results if r["score"] >= score_thr]
    images = prepare_images(gt, kept, iou_type="bbox", max_dets=max_dets)
    cols: dict[str, list] = {k: [] for k in MatchedDetections._ARRAYS}
    for im in images:
        # 3. the COCO greedy one-to-one match, class-aware
        dt_gt, dt_ign = greedy_match(im.iou, im.dt_scores, im.dt_labels, im.gt_labels, im.gt_crowd, iou_thr)
        # 4. drop crowd-absorbed detections; IoU with the matched GT, 0 for FPs
        keep = ~dt_ign
        tp = dt_gt[keep] >= 0
        rows = np.flatnonzero(keep)
        iou = np.zeros(len(rows))
        iou[tp] = im.iou[rows[tp], dt_gt[keep][tp]]
        cols["scores"].append(im.dt_scores[keep])
        cols["labels"].append(im.dt_labels[keep])
        cols["boxes"].append(im.dt_boxes[keep])
        cols["image_ids"].append(np.full(len(rows), im.image_id, dtype=np.int64))
        cols["image_sizes"].append(np.tile(sizes[im.image_id], (len(rows), 1)))
        cols["tp"].append(tp)
        cols["ious"].append(iou)
    empty = {"scores": np.zeros(0), "labels": np.zeros(0, np.int64), "boxes": np.zeros((0, 4)),
             "image_ids": np.zeros(0, np.int64), "image_sizes": np.zeros((0, 2)), "tp": np.zeros(0, bool),
             "ious": np.zeros(0)}
    arrays = {k: (np.concatenate(v).astype(empty[k].dtype).reshape((-1, *empty[k].shape[1:]))
                  if v else empty[k]) for k, v in cols.items()}
    return MatchedDetections(**arrays, iou_thr=float(iou_thr), score_thr=float(score_thr))
