"""COCO box and mask AP through faster-coco-eval, behind a Detectron2-style evaluator protocol.

``CocoEvaluator`` follows ``reset / process / evaluate`` and is also an accumulator: each worker
keeps its own partial (a plain list of COCO result dicts, picklable) and ``combine`` merges
partials before the one evaluation on the driver. The numbers come straight from
``faster_coco_eval.COCOeval_faster``; this module only adapts inputs and names the outputs, so
they reproduce pycocotools (checked in tests against ``../shared/refdata/coco``) to 1e-9.

Example::

    ev = CocoEvaluator(gt_dict, iou_type="bbox")
    ev.process(results)            # COCO results format: image_id, category_id, bbox, score
    out = ev.evaluate()
    out.stats["AP"], out.per_class_ap[category_id]
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Iterable, Literal

import numpy as np

from cvray.evaluate.base import ResultsAccumulator

__all__ = ["STAT_KEYS", "CocoEvalResult", "CocoEvaluator", "CocoEvalError", "coco_evaluate"]

logger = logging.getLogger(__name__)

#: The 12 COCO summary stats in pycocotools' order.
STAT_KEYS: tuple[str, ...] = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)
IouType = Literal["bbox", "segm"]


class CocoEvalError(ValueError):
    """Ground truth or predictions that cannot be evaluated (names the offending record)."""


@dataclass(frozen=True)
class CocoEvalResult:
    """Outcome of one COCO evaluation.

    ``precision`` is pycocotools' [T, R, K, A, M] array (IoU thresholds x 101 recall points x
    categories x area ranges x max-dets), kept so PR curves and per-class tables need no rerun.
    """

    iou_type: str
    stats: dict[str, float]
    per_class_ap: dict[int, float]
    per_class_ap50: dict[int, float]
    category_names: dict[int, str]
    category_ids: list[int]
    iou_thresholds: np.ndarray = field(repr=False)
    recall_thresholds: np.ndarray = field(repr=False)
    precision: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)
    num_images: int = 0
    num_predictions: int = 0

    def per_class_rows(self) -> list[dict]:
        """One row per category (id, name, AP, AP50); NaN where the class has no GT."""
        return [
            {"category_id": c, "name": self.category_names.get(c, str(c)),
             "AP": self.per_class_ap[c], "AP50": self.per_class_ap50[c]}
            for c in self.category_ids
        ]


def _mean_valid(a: np.ndarray) -> float:
    """pycocotools' convention: mean over entries > -1, NaN (not -1) when there are none."""
    valid = a[a > -1]
    return float(np.mean(valid)) if valid.size else float("nan")


def _check_results(results: list[dict], gt_images: set, iou_type: str) -> None:
    need = "bbox" if iou_type == "bbox" else "segmentation"
    for i, r in enumerate(results):
        missing = [k for k in ("image_id", "category_id", "score", need) if k not in r]
        if missing:
            raise CocoEvalError(f"prediction #{i} (image_id={r.get('image_id')}) lacks {missing}")
        if r["image_id"] not in gt_images:
            raise CocoEvalError(f"prediction #{i} refers to image_id={r['image_id']} "
                                f"which is not in the ground truth")
        if not np.isfinite(r["score"]):
            raise CocoEvalError(f"prediction #{i} (image_id={r['image_id']}) has score {r['score']}")


class CocoEvaluator(ResultsAccumulator):
    """COCO AP/AR for one IoU type. ``reset / process / evaluate`` plus ``combine``.

    Args:
        gt: a COCO ground-truth dict (``images``, ``annotations``, ``categories``).
        iou_type: ``"bbox"`` or ``"segm"`` (results need RLE ``segmentation`` for segm).
        image_ids: evaluate on these images only (default: every GT image).
    """

    def __init__(self, gt: dict, iou_type: IouType = "bbox", *, image_ids: Iterable[int] | None = None):
        if iou_type not in ("bbox", "segm"):
            raise CocoEvalError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
        for key in ("images", "annotations", "categories"):
            if key not in gt:
                raise CocoEvalError(f"ground truth lacks the {key!r} list")
        self.gt = gt
        self.iou_type = iou_type
        self.image_ids = sorted(image_ids) if image_ids is not None else None
        self._gt_images = {im["id"] for im in gt["images"]}
        self.reset()

    def _check(self, batch: list[dict]) -> None:
        _check_results(batch, self._gt_images, self.iou_type)

    def evaluate(self) -> CocoEvalResult:
        """Run faster-coco-eval on everything processed so far."""
        from faster_coco_eval import COCO, COCOeval_faster

        quiet = logger.debug
        coco_gt = COCO(copy.deepcopy(self.gt), print_function=quiet)
        # loadRes mutates and numbers its input; hand it copies. For segm, drop any bbox: with a
        # bbox present loadRes takes the detection's area from the box instead of the mask, which
        # shifts detections between the small/medium/large ranges (the official segm results
        # format has no bbox, and the oracle is computed that way).
        if self.iou_type == "segm":
            dts = [{k: v for k, v in r.items() if k != "bbox"} for r in self._results]
        else:
            dts = [dict(r) for r in self._results]
        coco_dt = coco_gt.loadRes(dts)
        ev = COCOeval_faster(coco_gt, coco_dt, self.iou_type, print_function=quiet)
        if self.image_ids is not None:
            ev.params.imgIds = list(self.image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        stats = {k: float(v) for k, v in zip(STAT_KEYS, ev.stats[:12])}
        precision = np.asarray(ev.eval["precision"])  # [T, R, K, A, M]
        cat_ids = [int(c) for c in ev.params.catIds]
        iou_thrs = np.asarray(ev.params.iouThrs)
        t50 = int(np.argmin(np.abs(iou_thrs - 0.5)))
        per_ap, per_ap50 = {}, {}
        for k, c in enumerate(cat_ids):
            per_ap[c] = _mean_valid(precision[:, :, k, 0, -1])
            per_ap50[c] = _mean_valid(precision[t50, :, k, 0, -1])
        names = {int(c["id"]): str(c.get("name", c["id"])) for c in self.gt["categories"]}
        return CocoEvalResult(
            iou_type=self.iou_type, stats=stats, per_class_ap=per_ap, per_class_ap50=per_ap50,
            category_names=names, category_ids=cat_ids, iou_thresholds=iou_thrs,
            recall_thresholds=np.asarray(ev.params.recThrs), precision=precision,
            scores=np.asarray(ev.eval["scores"]), num_images=len(ev.params.imgIds),
            num_predictions=len(self._results),
        )


def coco_evaluate(gt: dict, results: list[dict], iou_type: IouType = "bbox") -> CocoEvalResult:
    """One-call form of :class:`CocoEvaluator`."""
    ev = CocoEvaluator(gt, iou_type)
    ev.process(results)
    return ev.evaluate()
