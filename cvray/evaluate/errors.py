"""TIDE-style error analysis (Bolya et al., "TIDE: A General Toolbox for Identifying Object
Detection Errors", ECCV 2020): every false positive and false negative goes into one bucket, and
each bucket's weight is the AP50 gained when its errors are fixed ("dAP").

Buckets for a false-positive detection, tested in this order (IoU with non-crowd GT):

1. localization   — best IoU with a GT of its own class in [bg_iou, fg_iou)
2. classification — IoU >= fg_iou with a GT of another class
3. duplicate      — IoU >= fg_iou with a GT of its own class that a higher-scoring one took
4. background     — IoU < bg_iou with every GT
5. both           — the rest: IoU in [bg_iou, fg_iou) with a GT of another class only
6. missed         — a GT that no TP took and no localization/classification error points to

Fixes (the paper's oracle): localization → the box becomes its GT's box (removed if that GT is
already taken); classification → the label becomes its GT's label (removed if taken);
both/duplicate/background → removed; missed → the GT is removed. After a fix the data are matched
again and AP50 (COCO 101-point) recomputed; dAP = fixed - base. Done per bucket overall, per bucket
and class, and per bucket and object size (small/medium/large by GT area, by box area for
background errors).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cvray.evaluate.base import ResultsAccumulator
from cvray.evaluate.config import ErrorConfig
from cvray.evaluate.matching import (ImageEval, collect_classes, coco_interp_ap, greedy_match,
                                     match_images, prepare_images, size_bucket, SIZE_RANGES)

__all__ = ["ERROR_TYPES", "ErrorAnalysis", "analyze_errors", "ErrorEvaluator"]

ERROR_TYPES = ("localization", "classification", "both", "duplicate", "background", "missed")


@dataclass
class ErrorAnalysis:
    """Result of :func:`analyze_errors`; every list flattens straight into a Parquet table."""

    ap50: float
    per_class_ap50: dict[int, float]
    errors: list[dict]        # one row per error
    summary: list[dict]       # type, count, dAP
    per_class: list[dict]     # category_id, type, count, dAP
    per_size: list[dict]      # size, type, count, dAP
    true_positives: int


def _classify(im: ImageEval, dt_gt: np.ndarray, dt_ign: np.ndarray, cfg: ErrorConfig) -> list[dict]:
    rows = []
    regular = ~im.gt_crowd
    used = set(int(g) for g in dt_gt[dt_gt >= 0])
    pointed = set()
    for d in range(len(im.dt_labels)):
        if dt_gt[d] >= 0:
            continue
        ious = im.iou[d] if im.iou.shape[1] else np.zeros(0)
        same = (im.gt_labels == im.dt_labels[d]) & regular
        other = (im.gt_labels != im.dt_labels[d]) & regular

        def best(mask):
            if not mask.any():
                return -1, 0.0
            j = np.flatnonzero(mask)[np.argmax(ious[mask])]
            return int(j), float(ious[j])

        gs, s_iou = best(same)
        go, o_iou = best(other)
        if cfg.bg_iou <= s_iou < cfg.fg_iou:
            kind, g, v = "localization", gs, s_iou
        elif o_iou >= cfg.fg_iou:
            kind, g, v = "classification", go, o_iou
        elif s_iou >= cfg.fg_iou:
            kind, g, v = "duplicate", gs, s_iou
        elif max(s_iou, o_iou) < cfg.bg_iou:
            kind, g, v = "background", -1, max(s_iou, o_iou)
        else:
            kind, g, v = "both", go, o_iou
        if kind in ("localization", "classification"):
            pointed.add(g)
        x, y, w, h = im.dt_boxes[d]
        area = float(im.gt_area[g]) if g >= 0 else float(w * h)
        rows.append({"image_id": im.image_id, "type": kind, "det": d, "result_index": int(im.dt_index[d]),
                     "gt": g, "gt_id": int(im.gt_ids[g]) if g >= 0 else None,
                     "category_id": int(im.dt_labels[d]),
                     "gt_category_id": int(im.gt_labels[g]) if g >= 0 else None,
                     "score": float(im.dt_scores[d]), "iou": v, "size": size_bucket(area),
                     "gt_taken": g in used, "ignored": bool(dt_ign[d])})
    for g in np.flatnonzero(regular):
        if int(g) in used or int(g) in pointed:
            continue
        rows.append({"image_id": im.image_id, "type": "missed", "det": -1, "result_index": None,
                     "gt": int(g), "gt_id": int(im.gt_ids[g]), "category_id": int(im.gt_labels[g]),
                     "gt_category_id": int(im.gt_labels[g]), "score": None, "iou": None,
                     "size": size_bucket(float(im.gt_area[g])), "gt_taken": False, "ignored": False})
    # detections matched to crowd regions are neither TP nor FP: drop their rows
    return [r for r in rows if not r["ignored"]]


def _fixed_aps(images: list[ImageEval], errors_by_image: dict[int, list[dict]], cats: list[int],
               cfg: ErrorConfig) -> dict[int, float]:
    """Per-class AP50 after applying the oracle fix to the given errors."""
    keeps, labels, actives, matches = [], [], [], []
    for im in images:
        keep = np.ones(len(im.dt_labels), bool)
        lab = im.dt_labels.copy()
        active = np.ones(len(im.gt_labels), bool)
        iou = im.iou
        rows = errors_by_image.get(im.image_id, [])
        gg = None
        for r in rows:
            t = r["type"]
            if t == "missed":
                active[r["gt"]] = False
            elif t in ("both", "duplicate", "background") or r["gt_taken"]:
                keep[r["det"]] = False
            elif t == "classification":
                lab[r["det"]] = im.gt_labels[r["gt"]]
            elif t == "localization":
                if gg is None:
                    gg = im.gt_gt_iou()
                    iou = iou.copy()
                iou[r["det"]] = gg[r["gt"]]
        k = np.flatnonzero(keep)
        dt_gt = np.full(len(keep), -1)
        dt_ign = np.zeros(len(keep), bool)
        sub_gt, sub_ign = greedy_match(iou[k], im.dt_scores[k], lab[k], im.gt_labels, im.gt_crowd,
                                       cfg.fg_iou, gt_active=active)
        dt_gt[k], dt_ign[k] = sub_gt, sub_ign
        keeps.append(keep)
        labels.append(lab)
        actives.append(active)
        matches.append((dt_gt, dt_ign))
    cd = collect_classes(images, matches, cats, dt_keep=keeps, dt_labels=labels, gt_active=actives)
    return {c: coco_interp_ap(v.scores, v.tp, v.npos) for c, v in cd.items()}


def _mean(aps: dict[int, float]) -> float:
    """mAP over classes that have GT (COCO's rule); a class whose only GTs were "fixed" away
    by removing missed objects leaves the mean, as it would in COCO."""
    vals = [v for v in aps.values() if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def analyze_errors(gt: dict, results: list[dict], iou_type: str = "bbox",
                   cfg: ErrorConfig = ErrorConfig()) -> ErrorAnalysis:
    """Bucket every error and measure each bucket's dAP (overall, per class, per size)."""
    cats = sorted(int(c["id"]) for c in gt["categories"])
    images = prepare_images(gt, results, iou_type, max_dets=cfg.max_dets)
    matches = match_images(images, cfg.fg_iou)
    base_cd = collect_classes(images, matches, cats)
    base = {c: coco_interp_ap(v.scores, v.tp, v.npos) for c, v in base_cd.items()}
    base_map = _mean(base)
    errors = [r for im, (g, i) in zip(images, matches) for r in _classify(im, g, i, cfg)]
    tps = int(sum(v.tp.sum() for v in base_cd.values()))

    def by_image(rows):
        out: dict[int, list[dict]] = {}
        for r in rows:
            out.setdefault(r["image_id"], []).append(r)
        return out

    summary, per_class, per_size = [], [], []
    for t in ERROR_TYPES:
        rows_t = [r for r in errors if r["type"] == t]
        fixed = _fixed_aps(images, by_image(rows_t), cats, cfg) if rows_t else base
        summary.append({"type": t, "count": len(rows_t), "dAP": _mean(fixed) - base_map})
        for c in cats:
            n = sum(1 for r in rows_t if r["category_id"] == c)
            if np.isnan(base[c]) and n == 0:
                continue
            per_class.append({"category_id": c, "type": t, "count": n, "dAP": fixed[c] - base[c]})
        for s in SIZE_RANGES:
            rows_ts = [r for r in rows_t if r["size"] == s]
            f = _fixed_aps(images, by_image(rows_ts), cats, cfg) if rows_ts else base
            per_size.append({"size": s, "type": t, "count": len(rows_ts), "dAP": _mean(f) - base_map})
    for r in errors:
        r.pop("det"), r.pop("gt"), r.pop("ignored")
    return ErrorAnalysis(base_map, base, errors, summary, per_class, per_size, tps)


class ErrorEvaluator(ResultsAccumulator):
    """``reset / process / evaluate`` + ``combine`` wrapper around :func:`analyze_errors`."""

    def __init__(self, gt: dict, iou_type: str = "bbox", cfg: ErrorConfig = ErrorConfig()):
        self.gt, self.iou_type, self.cfg = gt, iou_type, cfg
        self.reset()

    def evaluate(self) -> ErrorAnalysis:
        return analyze_errors(self.gt, self._results, self.iou_type, self.cfg)
