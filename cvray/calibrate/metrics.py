"""Calibration errors of detection scores: ECE, D-ECE (Küppers et al. 2020) and LaECE (Oksuz et al. 2023).

A detector is calibrated when, among detections scored ``p``, a fraction ``p`` is correct. For
detection there is no "accuracy" over negatives, so following Küppers et al., "Multivariate
Confidence Calibration for Object Detection" (CVPR-W 2020), accuracy in a bin is its *precision*
(fraction of TPs at the stated IoU threshold):

* ``ece``   — equal-width confidence bins: ``sum_b |B_b|/N * |prec_b - conf_b|``.
* ``dece``  — the same sum over *joint* bins of confidence and the box's relative centre and
  size (cx/W, cy/H, w/W, h/H), so miscalibration that depends on where a box is or how big it
  is does not cancel out inside one confidence bin.
* ``laece`` — Oksuz et al., "Towards Building Self-Aware Object Detectors via Reliable
  Uncertainty Quantification and Calibration" (CVPR 2023): per class, the target of a bin is
  ``precision × mean IoU of its TPs`` (i.e. the mean of IoU for TPs and 0 for FPs), then the
  class errors are averaged. Precision-only errors can be made small by keeping only confident
  detections and ignore how well boxes fit; LaECE asks the score to also predict localisation.

Defaults: ECE 10 bins (the usual confidence-only setting); D-ECE 5 bins per dimension jointly
(5⁵ = 3125 joint bins: joint binning spreads detections thin, so Küppers et al. use fewer bins
per dimension in the multivariate case than for confidence alone; 10 per dimension would leave
most of 10⁵ bins empty on COCO-sized sets); LaECE 25 bins (Oksuz et al.). Empty bins contribute nothing. Bin ``b`` of ``B`` covers ``[b/B, (b+1)/B)``, the
last one also includes 1. Every result records its bins, IoU threshold and score threshold.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CalibrationResult", "ece", "dece", "laece", "calibration_report", "DECE_DIMS"]

#: D-ECE binning dimensions, in order: confidence, then box centre and size relative to the image.
DECE_DIMS = ("confidence", "cx", "cy", "w", "h")


@dataclass
class CalibrationResult:
    """A calibration error with what a reliability diagram needs.

    ``edges``/``counts``/``confidence``/``accuracy`` are per *confidence* bin (for D-ECE the
    marginal over box bins; for LaECE pooled over classes, ``accuracy`` being the
    precision × IoU target). Empty bins have NaN confidence and accuracy.
    """

    metric: str
    value: float
    bins: dict[str, int]
    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    n: int
    iou_thr: float | None = None
    score_thr: float | None = None
    nonempty_bins: int = 0
    per_class: dict[int, CalibrationResult] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """What ``accuracy`` holds (the diagram's y label)."""
        return "precision × IoU" if self.metric == "laece" else "precision"

    def to_dict(self) -> dict:
        """Plain JSON-able data (NaN bins become None)."""
        def lst(a):
            return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float)]
        return {"metric": self.metric, "value": None if not np.isfinite(self.value) else float(self.value),
                "bins": dict(self.bins), "edges": lst(self.edges), "counts": [int(c) for c in self.counts],
                "confidence": lst(self.confidence), "accuracy": lst(self.accuracy), "n": int(self.n),
                "iou_thr": self.iou_thr, "score_thr": self.score_thr, "nonempty_bins": int(self.nonempty_bins),
                "per_class": {str(c): r.to_dict() for c, r in self.per_class.items()}}


def _check(scores, tp, n_bins: int, name: str = "bins") -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    t = np.asarray(tp).reshape(-1)
    if s.shape != t.shape:
        raise ValueError(f"scores ({s.shape}) and tp ({t.shape}) must have the same length")
    if not (np.isfinite(s).all() and ((s >= 0) & (s <= 1)).all()):
        raise ValueError("scores must be finite and in [0, 1]")
    if not np.isin(t, (0, 1)).all():
        raise ValueError("tp must hold only booleans / 0 / 1")
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"{name} must be a positive integer, got {n_bins!r}")
    return s, t.astype(np.float64)


def _bin(x: np.ndarray, n: int) -> np.ndarray:
    """Index of the equal-width bin ``[b/n, (b+1)/n)`` of each value in [0, 1] (1 goes to the last)."""
    return np.clip(np.floor(x * n).astype(np.int64), 0, n - 1)


def _binned(metric: str, s: np.ndarray, target: np.ndarray, conf_bins: int, joint: np.ndarray,
            n_joint: int, bins: dict[str, int], iou_thr, score_thr) -> CalibrationResult:
    """Shared reduction: ``sum_k |B_k|/N |mean target_k - mean conf_k|`` over joint bins ``k``."""
    n = len(s)
    # 1. per joint bin: count, sum of confidence, sum of target
    cnt = np.bincount(joint, minlength=n_joint).astype(np.float64)
    cs = np.bincount(joint, weights=s, minlength=n_joint)
    ts = np.bincount(joint, weights=target, minlength=n_joint)
    ok = cnt > 0
    # 2. weighted absolute gaps of non-empty bins (|B_k|/N |t_k/|B_k| - c_k/|B_k|| = |t_k - c_k|/N)
    value = float(np.abs(ts[ok] - cs[ok]).sum() / n) if n else float("nan")
    # 3. the confidence marginal, for diagrams
    cb = _bin(s, conf_bins)
    mc = np.bincount(cb, minlength=conf_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(mc > 0, np.bincount(cb, weights=s, minlength=conf_bins) / mc, np.nan)
        acc = np.where(mc > 0, np.bincount(cb, weights=target, minlength=conf_bins) / mc, np.nan)
    return CalibrationResult(metric, value, bins, np.linspace(0.0, 1.0, conf_bins + 1), mc.astype(np.int64),
                             conf, acc, n, iou_thr, score_thr, int(ok.sum()))


def _per_class(fn, labels, n, *arrays, **kw) -> dict[int, CalibrationResult]:
    labels = np.asarray(labels).reshape(-1)
    if labels.shape != (n,):
        raise ValueError(f"labels has {labels.shape}, expected ({n},)")
    return {int(c): fn(*(a[labels == c] for a in arrays), **kw) for c in np.unique(labels)}


def ece(scores, tp, bins: int = 10, *, labels=None, iou_thr: float | None = None,
        score_thr: float | None = None) -> CalibrationResult:
    """Detection ECE (precision per equal-width confidence bin); ``labels`` adds a per-class breakdown."""
    s, t = _check(scores, tp, bins)
    r = _binned("ece", s, t, bins, _bin(s, bins), bins, {"confidence": int(bins)}, iou_thr, score_thr)
    if labels is not None:
        r.per_class = _per_class(ece, labels, len(s), s, t, bins=bins, iou_thr=iou_thr, score_thr=score_thr)
    return r


def _dece_bins(bins) -> dict[str, int]:
    if isinstance(bins, Mapping):
        extra = set(bins) - set(DECE_DIMS)
        if extra:
            raise ValueError(f"unknown D-ECE bin dimensions {sorted(extra)}; known: {DECE_DIMS}")
        out = {d: int(bins.get(d, 5)) for d in DECE_DIMS}
    elif isinstance(bins, Sequence):
        if len(bins) != len(DECE_DIMS):
            raise ValueError(f"D-ECE bins needs {len(DECE_DIMS)} counts {DECE_DIMS}, got {list(bins)}")
        out = dict(zip(DECE_DIMS, map(int, bins)))
    else:
        out = {d: int(bins) for d in DECE_DIMS}
    bad = {d: b for d, b in out.items() if b < 1}
    if bad:
        raise ValueError(f"D-ECE bin counts must be >= 1, got {bad}")
    return out


def dece(scores, tp, boxes, image_sizes, bins: int | Sequence[int] | Mapping[str, int] = 5, *, labels=None,
         iou_thr: float | None = None, score_thr: float | None = None) -> CalibrationResult:
    """Küppers' D-ECE over joint bins of (confidence, cx, cy, w, h), boxes COCO xywh in pixels.

    ``bins``: one count for every dimension, five counts in ``DECE_DIMS`` order, or a dict (missing
    dimensions get 5). A count of 1 ignores that dimension; ``(B, 1, 1, 1, 1)`` is ``ece(bins=B)``.
    Relative coordinates are clipped to [0, 1] (boxes may extend past the image border).
    """
    b = _dece_bins(bins)
    s, t = _check(scores, tp, b["confidence"])
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if len(s) else np.zeros((0, 4))
    wh = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2) if len(s) else np.zeros((0, 2))
    if boxes.shape != (len(s), 4) or wh.shape != (len(s), 2):
        raise ValueError(f"boxes {boxes.shape} / image_sizes {wh.shape} must be ({len(s)}, 4) / ({len(s)}, 2)")
    if not (wh > 0).all():
        raise ValueError("image_sizes must be positive (width, height)")
    # 1. relative box description: centre and size over image width / height
    rel = np.stack([(boxes[:, 0] + boxes[:, 2] / 2) / wh[:, 0], (boxes[:, 1] + boxes[:, 3] / 2) / wh[:, 1],
                    boxes[:, 2] / wh[:, 0], boxes[:, 3] / wh[:, 1]], axis=1).clip(0.0, 1.0)
    # 2. one flat joint-bin index over the five dimensions
    counts = [b[d] for d in DECE_DIMS]
    idx = [_bin(s, counts[0])] + [_bin(rel[:, k], counts[k + 1]) for k in range(4)]
    joint = np.ravel_multi_index(idx, counts) if len(s) else np.zeros(0, np.int64)
    r = _binned("dece", s, t, b["confidence"], joint, int(np.prod(counts)), b, iou_thr, score_thr)
    if labels is not None:
        r.per_class = _per_class(dece, labels, len(s), s, t, boxes, wh, bins=b, iou_thr=iou_thr,
                                 score_thr=score_thr)
    return r


def laece(scores, tp, ious, labels, bins: int = 25, *, iou_thr: float | None = None,
          score_thr: float | None = None) -> CalibrationResult:
    """Oksuz et al.'s LaECE: per class ``sum_j |D_j|/|D| |conf_j - prec_j * meanIoU_j|``, class-averaged.

    Only classes with detections enter the average (a class without detections has no bins).
    The top-level per-bin arrays pool all classes (for the overall diagram); ``value`` is the mean
    of ``per_class`` values. The paper matches at IoU 0.1 for its LRP setup; here it is the caller's
    ``iou_thr`` (0.5 by default in ``match_detections``), recorded in the result.
    """
    s, t = _check(scores, tp, bins)
    iou = np.asarray(ious, dtype=np.float64).reshape(-1)
    if iou.shape != s.shape or not (np.isfinite(iou).all() and ((iou >= 0) & (iou <= 1)).all()):
        raise ValueError(f"ious must be {s.shape} values in [0, 1]")
    # 1. per detection target: IoU for a TP, 0 for an FP (bin mean = precision × mean TP IoU)
    target = t * iou
    meta = {"confidence": int(bins)}
    # 2. per class binned error; 3. average over classes present
    per = _per_class(lambda a, b: _binned("laece", a, b, bins, _bin(a, bins), bins, meta, iou_thr, score_thr),
                     labels, len(s), s, target)
    r = _binned("laece", s, target, bins, _bin(s, bins), bins, meta, iou_thr, score_thr)
    r.value = float(np.mean([p.value for p in per.values()])) if per else float("nan")
    r.per_class = per
    return r


def calibration_report(m, *, ece_bins: int = 10, dece_bins: int | Sequence[int] | Mapping[str, int] = 5,
                       laece_bins: int = 25) -> dict[str, CalibrationResult]:
    """ECE, D-ECE and LaECE (each with per-class breakdown) of a ``MatchedDetections``."""
    thr = {"iou_thr": m.iou_thr, "score_thr": m.score_thr}
    return {"ece": ece(m.scores, m.tp, ece_bins, labels=m.labels, **thr),
            "dece": dece(m.scores, m.tp, m.boxes, m.image_sizes, dece_bins, labels=m.labels, **thr),
            "laece": laece(m.scores, m.tp, m.ious, m.labels, laece_bins, **thr)}
