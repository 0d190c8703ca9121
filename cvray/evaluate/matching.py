"""Per-image detection ↔ ground-truth matching, the way pycocotools does it, as plain numpy.

The error analysis, VOC AP, PR curves and precision/recall-vs-confidence all need per-detection
match flags, which faster-coco-eval keeps inside C++. This module rebuilds them with the same
rules as ``COCOeval.evaluateImg`` at one IoU threshold and the "all" area range:

1. per image and category, detections sorted by score (stable), at most ``max_dets`` kept;
2. ground truth sorted so regular boxes come before crowd (ignored) ones;
3. each detection takes the still-free regular GT with the highest IoU >= threshold; crowd GT
   can absorb any number of detections, which are then ignored (neither TP nor FP).

IoUs come from ``pycocotools.mask.iou`` (boxes or RLE masks, crowd-aware), so AP computed here
equals the COCO AP50 to floating-point precision (checked against the shared oracle in tests).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["ImageEval", "ClassDets", "prepare_images", "greedy_match", "match_images", "collect_classes",
           "coco_interp_ap", "voc_ap", "size_bucket",
           "SIZE_RANGES"]

#: COCO area ranges (pixels²): small < 32², medium < 96², large otherwise.
SIZE_RANGES: dict[str, tuple[float, float]] = {"small": (0, 32 ** 2), "medium": (32 ** 2, 96 ** 2),
                                               "large": (96 ** 2, float("inf"))}


def size_bucket(area: float) -> str:
    for name, (lo, hi) in SIZE_RANGES.items():
        if lo <= area < hi:
            return name
    return "large"


@dataclass
class ImageEval:
    """Arrays for one image. Boxes are COCO xywh; ``iou`` is (D, G), crowd-aware."""

    image_id: int
    gt_ids: np.ndarray
    gt_labels: np.ndarray
    gt_crowd: np.ndarray
    gt_area: np.ndarray
    gt_boxes: np.ndarray
    dt_index: np.ndarray            # position of each detection in the caller's results list
    dt_labels: np.ndarray
    dt_scores: np.ndarray
    dt_boxes: np.ndarray
    iou: np.ndarray
    gt_geoms: list = field(default_factory=list, repr=False)   # boxes or RLEs (for re-IoU)

    def gt_gt_iou(self) -> np.ndarray:
        """IoU between GT objects (used when a fix moves a detection onto a GT box)."""
        if not len(self.gt_ids):
            return np.zeros((0, 0))
        return np.asarray(mask_utils.iou(self.gt_geoms, self.gt_geoms, self.gt_crowd.astype(np.uint8)))


def _gt_rle(ann: dict, h: int, w: int):
    seg = ann["segmentation"]
    if isinstance(seg, list):
        return mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    if isinstance(seg["counts"], list):
        return mask_utils.frPyObjects(seg, h, w)
    return seg


def _dt_rle(seg: dict):
    counts = seg["counts"]
    return {"size": list(seg["size"]), "counts": counts.encode() if isinstance(counts, str) else counts}


def prepare_images(gt: dict, results: list[dict], iou_type: str = "bbox",
                   max_dets: int = 100) -> list[ImageEval]:
    """Group GT and results per image (sorted image ids) with their IoU matrices."""
    imgs = {im["id"]: im for im in gt["images"]}
    gts: dict[int, list[dict]] = defaultdict(list)
    for a in gt["annotations"]:
        gts[a["image_id"]].append(a)
    dts: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(results):
        dts[r["image_id"]].append(i)
    out = []
    for img_id in sorted(imgs):
        im = imgs[img_id]
        ga = gts.get(img_id, [])
        # per category: stable sort by score, keep the top max_dets (as COCOeval.evaluateImg)
        by_cat: dict[int, list[int]] = defaultdict(list)
        for i in dts.get(img_id, []):
            by_cat[results[i]["category_id"]].append(i)
        keep = []
        for c in by_cat:
            idx = by_cat[c]
            order = np.argsort([-results[i]["score"] for i in idx], kind="mergesort")
            keep.extend(idx[j] for j in order[:max_dets])
        keep.sort()
        crowd = np.array([int(a.get("iscrowd", 0)) for a in ga], dtype=np.uint8)
        if iou_type == "segm":
            g_geo = [_gt_rle(a, im["height"], im["width"]) for a in ga]
            d_geo = [_dt_rle(results[i]["segmentation"]) for i in keep]
            d_box = np.array([mask_utils.toBbox(g) for g in d_geo], float).reshape(-1, 4)
        else:
            g_geo = [list(map(float, a["bbox"])) for a in ga]
            d_geo = [list(map(float, results[i]["bbox"])) for i in keep]
            d_box = np.array(d_geo, float).reshape(-1, 4)
        iou = np.asarray(mask_utils.iou(d_geo, g_geo, crowd)) if d_geo and g_geo \
            else np.zeros((len(d_geo), len(g_geo)))
        out.append(ImageEval(
            image_id=img_id,
            gt_ids=np.array([a.get("id", k) for k, a in enumerate(ga)], dtype=np.int64),
            gt_labels=np.array([a["category_id"] for a in ga], dtype=np.int64),
            gt_crowd=crowd.astype(bool),
            gt_area=np.array([float(a.get("area", a["bbox"][2] * a["bbox"][3])) for a in ga]),
            gt_boxes=np.array([a["bbox"] for a in ga], float).reshape(-1, 4),
            dt_index=np.array(keep, dtype=np.int64),
            dt_labels=np.array([results[i]["category_id"] for i in keep], dtype=np.int64),
            dt_scores=np.array([results[i]["score"] for i in keep], dtype=np.float64),
            dt_boxes=d_box, iou=iou.reshape(len(d_geo), len(g_geo)), gt_geoms=g_geo,
        ))
    return out


def greedy_match(iou: np.ndarray, dt_scores: np.ndarray, dt_labels: np.ndarray, gt_labels: np.ndarray,
                 gt_crowd: np.ndarray, iou_thr: float, *, gt_active: np.ndarray | None = None,
                 class_aware: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """COCO greedy matching at one threshold.

    Returns ``dt_gt`` (index of the matched GT or -1) and ``dt_ignored`` (matched a crowd region).
    ``gt_active`` removes GTs from consideration (used to "fix" missed objects).
    """
    D, G = iou.shape
    dt_gt = np.full(D, -1, dtype=np.int64)
    dt_ign = np.zeros(D, dtype=bool)
    if gt_active is None:
        gt_active = np.ones(G, dtype=bool)
    groups = np.unique(dt_labels) if class_aware else [None]
    for c in groups:
        d_idx = np.flatnonzero(dt_labels == c) if class_aware else np.arange(D)
        g_idx = np.flatnonzero(((gt_labels == c) if class_aware else True) & gt_active)
        if not len(d_idx):
            continue
        d_idx = d_idx[np.argsort(-dt_scores[d_idx], kind="mergesort")]
        g_idx = g_idx[np.argsort(gt_crowd[g_idx], kind="mergesort")]  # regular first
        taken = np.zeros(len(g_idx), dtype=bool)
        for d in d_idx:
            best_iou, m = min(iou_thr, 1 - 1e-10), -1
            for k, g in enumerate(g_idx):
                if taken[k] and not gt_crowd[g]:
                    continue
                if m > -1 and not gt_crowd[g_idx[m]] and gt_crowd[g]:
                    break
                if iou[d, g] < best_iou:
                    continue
                best_iou, m = iou[d, g], k
            if m == -1:
                continue
            taken[m] = True
            dt_gt[d] = g_idx[m]
            dt_ign[d] = bool(gt_crowd[g_idx[m]])
    return dt_gt, dt_ign


def coco_interp_ap(scores: np.ndarray, tp: np.ndarray, npos: int,
                   rec_thrs: np.ndarray | None = None) -> float:
    """COCO 101-point interpolated AP from detections (already without ignored ones).

    Detections must be in COCO's concatenation order (image by image, score-sorted); the global
    stable sort below then breaks score ties exactly as pycocotools does. NaN when npos == 0.
    """
    if npos == 0:
        return float("nan")
    rec_thrs = np.linspace(0.0, 1.0, 101) if rec_thrs is None else rec_thrs
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    tp = np.asarray(tp, dtype=bool)[order]
    tps = np.cumsum(tp).astype(float)
    fps = np.cumsum(~tp).astype(float)
    if not len(tp):
        return 0.0
    rc = tps / npos
    pr = tps / (tps + fps + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1]  # precision envelope
    inds = np.searchsorted(rc, rec_thrs, side="left")
    q = np.zeros(len(rec_thrs))
    ok = inds < len(pr)
    q[ok] = pr[inds[ok]]
    return float(np.mean(q))


def voc_ap(scores: np.ndarray, tp: np.ndarray, npos: int, *, use_07_metric: bool = False) -> float:
    """PASCAL VOC AP: area under the precision envelope (VOC2010+), or 11-point (VOC2007)."""
    if npos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    tp = np.asarray(tp, dtype=bool)[order]
    tps = np.cumsum(tp).astype(float)
    fps = np.cumsum(~tp).astype(float)
    rec = tps / npos
    prec = tps / np.maximum(tps + fps, np.finfo(np.float64).eps)
    if use_07_metric:
        return float(np.mean([prec[rec >= t].max() if (rec >= t).any() else 0.0
                              for t in np.linspace(0, 1, 11)]))
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


@dataclass
class ClassDets:
    """One class over a dataset: detection scores and TP flags in COCO order, GT count."""

    scores: np.ndarray
    tp: np.ndarray
    npos: int


def match_images(images: list[ImageEval], iou_thr: float = 0.5) -> list[tuple[np.ndarray, np.ndarray]]:
    """``greedy_match`` for every image; returns (dt_gt, dt_ignored) per image."""
    return [greedy_match(im.iou, im.dt_scores, im.dt_labels, im.gt_labels, im.gt_crowd, iou_thr)
            for im in images]


def collect_classes(images: list[ImageEval], matches: list[tuple[np.ndarray, np.ndarray]],
                    category_ids: list[int], *, dt_keep: list[np.ndarray] | None = None,
                    dt_labels: list[np.ndarray] | None = None,
                    gt_active: list[np.ndarray] | None = None) -> dict[int, ClassDets]:
    """Per class: scores and TP flags (ignored detections dropped) and the regular-GT count.

    ``dt_keep`` / ``dt_labels`` / ``gt_active`` override the images' own (used by error fixes).
    """
    s: dict[int, list] = {c: [] for c in category_ids}
    t: dict[int, list] = {c: [] for c in category_ids}
    npos = {c: 0 for c in category_ids}
    for n, (im, (dt_gt, dt_ign)) in enumerate(zip(images, matches)):
        labels = im.dt_labels if dt_labels is None else dt_labels[n]
        keep = np.ones(len(labels), bool) if dt_keep is None else dt_keep[n]
        active = np.ones(len(im.gt_labels), bool) if gt_active is None else gt_active[n]
        for c, crowd, a in zip(im.gt_labels, im.gt_crowd, active):
            if a and not crowd and c in npos:
                npos[c] += 1
        for c in np.unique(labels):
            if c not in s:
                continue
            d = np.flatnonzero((labels == c) & keep & ~dt_ign)
            d = d[np.argsort(-im.dt_scores[d], kind="mergesort")]
            s[c].append(im.dt_scores[d])
            t[c].append(dt_gt[d] >= 0)
    return {c: ClassDets(np.concatenate(s[c]) if s[c] else np.zeros(0),
                         np.concatenate(t[c]) if t[c] else np.zeros(0, bool), npos[c])
            for c in category_ids}
