"""PASCAL VOC AP50, following the VOC devkit's ``VOCevaldet`` rules.

Differences from COCO that matter when comparing numbers:

1. a detection is compared with the GT of its class it overlaps most; if that GT is already
   taken it is a false positive (COCO would try the next free GT);
2. the match needs IoU strictly above the threshold (COCO: at least);
3. "difficult" objects (here ``iscrowd`` or ``difficult``/``ignore`` flags) are ignored;
4. AP is the area under the precision envelope (VOC2010+), or the 11-point mean (VOC2007).

Boxes use continuous pixel coordinates (no "+1" of the old devkit), as torchvision and COCO do.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils

from cvray.evaluate.matching import voc_ap
from cvray.evaluate.base import ResultsAccumulator

__all__ = ["VocResult", "voc_evaluate", "VocEvaluator"]


@dataclass(frozen=True)
class VocResult:
    mAP50: float
    per_class_ap: dict[int, float]
    npos: dict[int, int]
    use_07_metric: bool


def _difficult(a: dict) -> bool:
    return bool(a.get("iscrowd", 0) or a.get("difficult", 0) or a.get("ignore", 0))


def voc_evaluate(gt: dict, results: list[dict], *, iou_thr: float = 0.5,
                 use_07_metric: bool = False) -> VocResult:
    cats = sorted(int(c["id"]) for c in gt["categories"])
    g_by: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for a in gt["annotations"]:
        g_by[a["image_id"], a["category_id"]].append(a)
    aps, npos_all = {}, {}
    for c in cats:
        dets = [r for r in results if r["category_id"] == c]
        order = np.argsort([-r["score"] for r in dets], kind="mergesort")
        taken: dict[int, np.ndarray] = {}
        npos = sum(1 for (img, cc), anns in g_by.items() if cc == c for a in anns if not _difficult(a))
        tp = np.zeros(len(dets), bool)
        keep = np.ones(len(dets), bool)
        for rank, i in enumerate(order):
            r = dets[i]
            anns = g_by.get((r["image_id"], c), [])
            if not anns:
                continue
            ious = np.asarray(mask_utils.iou([list(map(float, r["bbox"]))],
                                             [list(map(float, a["bbox"])) for a in anns],
                                             np.zeros(len(anns), np.uint8)))[0]
            j = int(np.argmax(ious))
            if ious[j] > iou_thr:
                if _difficult(anns[j]):
                    keep[rank] = False
                    continue
                t = taken.setdefault(r["image_id"], np.zeros(len(anns), bool))
                if not t[j]:
                    t[j] = True
                    tp[rank] = True
        scores = np.array([dets[i]["score"] for i in order], float)
        aps[c] = voc_ap(scores[keep], tp[keep], npos, use_07_metric=use_07_metric)
        npos_all[c] = npos
    vals = [v for v in aps.values() if not np.isnan(v)]
    return VocResult(float(np.mean(vals)) if vals else float("nan"), aps, npos_all, use_07_metric)


class VocEvaluator(ResultsAccumulator):
    """``reset / process / evaluate`` + ``combine`` for VOC AP50."""

    def __init__(self, gt: dict, *, use_07_metric: bool = False):
        self.gt, self.use_07_metric = gt, use_07_metric
        self.reset()

    def evaluate(self) -> VocResult:
        return voc_evaluate(self.gt, self._results, use_07_metric=self.use_07_metric)
