"""Instance-mask error types: missed, merged, split, wrong class (plus false positives).

Given GT and predicted instance masks of one image:

1. match GT ↔ prediction one-to-one by mask IoU (Hungarian, maximum total IoU), keeping pairs
   with IoU >= ``match_iou``; a matched pair with different labels is ``wrong_class``;
2. a prediction that covers >= 2 GT objects (each with at least ``cover`` of its area inside
   the prediction) merges them: its unmatched GTs are ``merged``;
3. a GT that contains >= 2 predictions (each with at least ``cover`` of its area inside the GT)
   was split: if unmatched it is ``split``;
4. any other unmatched GT is ``missed``; an unmatched prediction involved in neither a merge nor
   a split is a ``false_positive``.

Counts add up across images (``combine`` is a sum).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment

from cvray.evaluate.config import InstanceErrorConfig

__all__ = ["INSTANCE_ERROR_TYPES", "classify_instances", "InstanceErrorCounter"]

INSTANCE_ERROR_TYPES = ("correct", "wrong_class", "merged", "split", "missed", "false_positive")


def classify_instances(gt_masks: np.ndarray, gt_labels: np.ndarray, pred_masks: np.ndarray,
                       pred_labels: np.ndarray, cfg: InstanceErrorConfig = InstanceErrorConfig()) -> dict:
    """Per-object outcome: ``{"gt": [type per GT], "pred": [type per prediction]}``."""
    g = np.asarray(gt_masks, bool).reshape(len(gt_labels), -1)
    p = np.asarray(pred_masks, bool).reshape(len(pred_labels), -1)
    inter = p.astype(np.float64) @ g.T.astype(np.float64)          # (P, G)
    pa, ga = p.sum(1).astype(np.float64), g.sum(1).astype(np.float64)
    union = pa[:, None] + ga[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    gt_type = ["missed"] * len(ga)
    pred_type = ["false_positive"] * len(pa)
    matched_g, matched_p = set(), set()
    if iou.size:
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols):
            if iou[r, c] >= cfg.match_iou:
                ok = int(pred_labels[r]) == int(gt_labels[c])
                gt_type[c] = pred_type[r] = "correct" if ok else "wrong_class"
                matched_g.add(int(c))
                matched_p.add(int(r))
    gt_in_pred = np.divide(inter, ga[None, :], out=np.zeros_like(inter), where=ga[None, :] > 0)
    pred_in_gt = np.divide(inter, pa[:, None], out=np.zeros_like(inter), where=pa[:, None] > 0)
    for r in range(len(pa)):
        covered = np.flatnonzero(gt_in_pred[r] >= cfg.cover)
        if len(covered) >= 2:
            if r not in matched_p:
                pred_type[r] = "merged"
            for c in covered:
                if int(c) not in matched_g:
                    gt_type[c] = "merged"
    for c in range(len(ga)):
        parts = np.flatnonzero(pred_in_gt[:, c] >= cfg.cover)
        if len(parts) >= 2:
            if int(c) not in matched_g and gt_type[c] == "missed":
                gt_type[c] = "split"
            for r in parts:
                if int(r) not in matched_p and pred_type[r] == "false_positive":
                    pred_type[r] = "split"
    return {"gt": gt_type, "pred": pred_type}


class InstanceErrorCounter:
    """Accumulator of GT-side error counts (and false positives) over images."""

    def __init__(self, cfg: InstanceErrorConfig = InstanceErrorConfig()):
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        self.counts = {t: 0 for t in INSTANCE_ERROR_TYPES}

    def update(self, gt_masks, gt_labels, pred_masks, pred_labels) -> dict:
        out = classify_instances(gt_masks, gt_labels, pred_masks, pred_labels, self.cfg)
        for t in out["gt"]:
            self.counts[t] += 1
        self.counts["false_positive"] += sum(1 for t in out["pred"] if t == "false_positive")
        return out

    def partial(self) -> dict:
        return dict(self.counts)

    def combine(self, partials: Iterable[dict]) -> None:
        for p in partials:
            for k, v in p.items():
                self.counts[k] += int(v)

    def compute(self) -> dict:
        return dict(self.counts)
