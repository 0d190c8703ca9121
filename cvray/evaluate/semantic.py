"""Semantic segmentation metrics as one accumulator: per-class IoU, mIoU, Dice, pixel accuracy,
boundary F-score — with an ignore index.

* IoU_c = TP / (TP + FP + FN), Dice_c = 2TP / (2TP + FP + FN), from one confusion matrix summed
  over images (dataset-level, as Cityscapes/mmseg report it; not a mean of per-image scores).
  A class that appears in neither GT nor prediction has NaN and is left out of the means.
* Pixel accuracy = correct / labelled pixels; GT pixels equal to ``ignore_index`` count nowhere.
* Boundary F (Csurka et al., BMVC 2013; the DAVIS "F" measure): per class, a boundary pixel is a
  mask pixel with a 4-neighbour outside the mask (the image edge is not a boundary). A predicted
  boundary pixel is correct when a GT boundary pixel lies within ``tolerance_px`` (Euclidean);
  precision and recall are pixel counts summed over images, F = 2PR / (P + R).

The partial state is a dict of integer arrays, so ``combine`` is a sum (map → reduce on Ray).
"""
from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt

__all__ = ["SemanticMetrics", "boundary_map"]

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (edges replicate: not a boundary)."""
    m = mask.astype(np.uint8)
    eroded = cv2.erode(m, _CROSS, borderType=cv2.BORDER_REPLICATE)
    return (m > 0) & (eroded == 0)


class SemanticMetrics:
    """``reset / update / compute`` + ``partial / combine`` for label maps of ``num_classes``."""

    def __init__(self, num_classes: int, *, ignore_index: int | None = 255, boundary_tolerance_px: int = 2):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.tolerance = int(boundary_tolerance_px)
        self.reset()

    def reset(self) -> None:
        c = self.num_classes
        self.state = {"confusion": np.zeros((c, c), np.int64),
                      "b_pred": np.zeros(c, np.int64), "b_pred_hit": np.zeros(c, np.int64),
                      "b_gt": np.zeros(c, np.int64), "b_gt_hit": np.zeros(c, np.int64)}

    def update(self, pred: np.ndarray, gt: np.ndarray, name: str = "<image>") -> None:
        pred = np.asarray(pred)
        gt = np.asarray(gt)
        if pred.shape != gt.shape:
            raise ValueError(f"{name}: prediction shape {pred.shape} != ground truth {gt.shape}")
        valid = np.ones(gt.shape, bool) if self.ignore_index is None else gt != self.ignore_index
        bad = valid & ((gt < 0) | (gt >= self.num_classes))
        if bad.any():
            raise ValueError(f"{name}: ground-truth label {int(gt[bad][0])} outside 0..{self.num_classes - 1} "
                             f"and not the ignore index {self.ignore_index}")
        if ((pred < 0) | (pred >= self.num_classes)).any():
            raise ValueError(f"{name}: predicted label outside 0..{self.num_classes - 1}")
        c = self.num_classes
        idx = gt[valid].astype(np.int64) * c + pred[valid].astype(np.int64)
        self.state["confusion"] += np.bincount(idx, minlength=c * c).reshape(c, c)
        for k in range(c):
            bp = boundary_map(pred == k) & valid
            bg = boundary_map(gt == k) & valid
            if not bp.any() and not bg.any():
                continue
            # distance from every pixel to the nearest boundary pixel of the other map
            d_to_gt = distance_transform_edt(~bg) if bg.any() else np.full(gt.shape, np.inf)
            d_to_pred = distance_transform_edt(~bp) if bp.any() else np.full(gt.shape, np.inf)
            self.state["b_pred"][k] += int(bp.sum())
            self.state["b_pred_hit"][k] += int((d_to_gt[bp] <= self.tolerance).sum())
            self.state["b_gt"][k] += int(bg.sum())
            self.state["b_gt_hit"][k] += int((d_to_pred[bg] <= self.tolerance).sum())

    def partial(self) -> dict:
        return {k: v.copy() for k, v in self.state.items()}

    def combine(self, partials: Iterable[dict]) -> None:
        for p in partials:
            for k in self.state:
                self.state[k] += np.asarray(p[k], dtype=np.int64)

    def compute(self) -> dict:
        cm = self.state["confusion"].astype(np.float64)
        tp = np.diag(cm)
        fp = cm.sum(0) - tp
        fn = cm.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
            dice = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
            acc_c = np.where(cm.sum(1) > 0, tp / cm.sum(1), np.nan)
            s = self.state
            bp = np.where(s["b_pred"] > 0, s["b_pred_hit"] / s["b_pred"], np.nan)
            br = np.where(s["b_gt"] > 0, s["b_gt_hit"] / s["b_gt"], np.nan)
            bp0, br0 = np.nan_to_num(bp), np.nan_to_num(br)
            bf = np.where(np.isnan(bp) & np.isnan(br), np.nan,
                          np.where(bp0 + br0 > 0, 2 * bp0 * br0 / (bp0 + br0), 0.0))
        total = cm.sum()

        def nanmean(a):
            return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")

        return {
            "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
            "mean_accuracy": nanmean(acc_c), "mIoU": nanmean(iou), "mDice": nanmean(dice),
            "mean_boundary_f": nanmean(bf), "iou": iou, "dice": dice, "accuracy": acc_c,
            "boundary_precision": bp, "boundary_recall": br, "boundary_f": bf,
            "labelled_pixels": int(total),
        }

    def per_class_rows(self, names: list[str] | None = None) -> list[dict]:
        r = self.compute()
        return [{"class_id": k, "name": names[k] if names else str(k), "iou": float(r["iou"][k]),
                 "dice": float(r["dice"][k]), "accuracy": float(r["accuracy"][k]),
                 "boundary_f": float(r["boundary_f"][k])} for k in range(self.num_classes)]
