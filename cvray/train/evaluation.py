"""Validation during training: predictions -> COCO box/mask AP, or confusion -> mIoU / Dice.

``predict_partial`` runs the model on a worker's share of the validation set and returns a
picklable partial (COCO result dicts, or a confusion matrix); ``summarize`` combines the partials
of all workers and computes the metrics once -- the map/reduce shape of every cvray metric. COCO
AP comes from :mod:`cvray.evaluate.coco` (faster-coco-eval, checked against the COCO oracle).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import torch
from pycocotools import mask as mask_utils

from cvray.train.data import CategoryMap, Sample

__all__ = ["ConfusionMatrix", "predict_partial", "predictions_to_coco", "summarize"]


class ConfusionMatrix:
    """Semantic-segmentation accumulator; ``ignore_index`` pixels are excluded from every count."""

    def __init__(self, num_classes: int, ignore_index: int = 255):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.reset()

    def reset(self) -> None:
        self.matrix = np.zeros((self.num_classes, self.num_classes), np.int64)

    def update(self, pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> None:
        p = np.asarray(pred).ravel().astype(np.int64)
        t = np.asarray(target).ravel().astype(np.int64)
        valid = (t != self.ignore_index) & (t >= 0) & (t < self.num_classes)
        idx = t[valid] * self.num_classes + p[valid]
        self.matrix += np.bincount(idx, minlength=self.num_classes ** 2).reshape(self.matrix.shape)

    def combine(self, partials: Iterable[np.ndarray]) -> None:
        for m in partials:
            self.matrix += m

    def compute(self) -> dict[str, Any]:
        """Per-class IoU and Dice (NaN for classes absent from both prediction and target)."""
        tp = np.diag(self.matrix).astype(np.float64)
        fp = self.matrix.sum(0) - tp
        fn = self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = tp / (tp + fp + fn)
            dice = 2 * tp / (2 * tp + fp + fn)
        total = self.matrix.sum()
        return {"mIoU": float(np.nanmean(iou)) if np.isfinite(iou).any() else math.nan,
                "mDice": float(np.nanmean(dice)) if np.isfinite(dice).any() else math.nan,
                "pixel_acc": float(tp.sum() / total) if total else math.nan,
                "per_class_iou": iou.tolist(), "per_class_dice": dice.tolist()}


def predictions_to_coco(pred: dict[str, torch.Tensor], image_id: int, cats: CategoryMap, *,
                        score_thresh: float = 0.0, masks: bool = True) -> list[dict]:
    """One image's torchvision-style predictions as COCO result dicts (segm as RLE)."""
    keep = pred["scores"] >= score_thresh
    boxes = pred["boxes"][keep].detach().cpu().double().numpy()
    scores = pred["scores"][keep].detach().cpu().double().numpy()
    labels = pred["labels"][keep].detach().cpu().numpy()
    rles = None
    if masks and "masks" in pred:
        m = (pred["masks"][keep][:, 0] > 0.5).cpu().numpy().astype(np.uint8)
        rles = mask_utils.encode(np.asfortranarray(m.transpose(1, 2, 0))) if len(m) else []
    out = []
    for i in range(len(scores)):
        x1, y1, x2, y2 = boxes[i]
        r = {"image_id": int(image_id), "category_id": cats.category(int(labels[i])),
             "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "score": float(scores[i])}
        if rles is not None:
            r["segmentation"] = {"size": list(rles[i]["size"]), "counts": rles[i]["counts"].decode()}
        out.append(r)
    return out


@torch.no_grad()
def predict_partial(model: torch.nn.Module, batches: Iterable[list[Sample]], cats: CategoryMap, *,
                    task: str, device: torch.device, score_thresh: float = 0.0,
                    ignore_index: int = 255) -> dict[str, Any]:
    """Run ``model`` (unwrapped, switched to eval) on ``batches``; returns a picklable partial."""
    was_training = model.training
    model.eval()
    results: list[dict] = []
    image_ids: list[int] = []
    cm = ConfusionMatrix(cats.num_classes + 1, ignore_index) if task == "semantic" else None
    try:
        for batch in batches:
            preds = model([s.image.to(device) for s in batch])
            for s, p in zip(batch, preds):
                iid = int(s.record["image_id"])
                image_ids.append(iid)
                if cm is not None:
                    cm.update(p["sem_seg"].cpu(), s.target["sem_seg"])
                else:
                    results.extend(predictions_to_coco(p, iid, cats, score_thresh=score_thresh,
                                                       masks=task == "instance"))
    finally:
        model.train(was_training)
    return {"results": results, "image_ids": image_ids, "confusion": None if cm is None else cm.matrix}


def summarize(partials: list[dict[str, Any]], gt: dict | None, cats: CategoryMap, *, task: str,
              ignore_index: int = 255) -> tuple[dict[str, float], list[dict]]:
    """Combine worker partials; returns (scalar metrics, per-class rows)."""
    if task == "semantic":
        cm = ConfusionMatrix(cats.num_classes + 1, ignore_index)
        cm.combine(p["confusion"] for p in partials)
        out = cm.compute()
        names = ("background", *cats.names)
        rows = [{"iou_type": "semseg", "category_id": (0, *cats.ids)[k], "name": names[k],
                 "IoU": out["per_class_iou"][k], "Dice": out["per_class_dice"][k]}
                for k in range(len(names))]
        return {k: out[k] for k in ("mIoU", "mDice", "pixel_acc")}, rows
    from cvray.evaluate.coco import CocoEvaluator

    image_ids = sorted({i for p in partials for i in p["image_ids"]})
    metrics: dict[str, float] = {}
    rows: list[dict] = []
    for iou_type in (("bbox", "segm") if task == "instance" else ("bbox",)):
        ev = CocoEvaluator(gt, iou_type, image_ids=image_ids)
        ev.combine(p["results"] for p in partials)
        if not ev.partial():  # nothing predicted yet: AP is 0 by definition, skip the evaluator
            metrics.update({f"{iou_type}_{k}": 0.0 for k in ("AP", "AP50", "AP75")})
            rows.extend({"iou_type": iou_type, "category_id": c, "name": n, "AP": 0.0, "AP50": 0.0}
                        for c, n in zip(cats.ids, cats.names))
            continue
        res = ev.evaluate()
        metrics.update({f"{iou_type}_{k}": v for k, v in res.stats.items()})
        rows.extend({"iou_type": iou_type, **r} for r in res.per_class_rows())
    return metrics, rows
