"""Evaluate tracker output against MOTChallenge ground truth with every metric family at once.

:func:`evaluate_sequence` is the per-sequence map (pure numpy, no Ray), :func:`combine` the reduce
and :func:`summarize` turns partials into the named numbers ``cvray track eval`` prints: CLEAR
(MOTA, MOTP, IDSW, Frag, FP, FN, MT/PT/ML) as TrackEval computes it at the top level, next to
HOTA and IDF1, and the same CLEAR metrics in the old devkit convention (py-motmetrics) under
``"devkit"``.

Ground-truth preprocessing follows the MOTChallenge devkit / TrackEval ``MotChallenge2DBox``:
gt rows with ``conf == 0`` are not evaluated. With ``mot17_classes=True`` (MOT16/17/20 gt, whose
column 8 is a class) predictions matched (IoU >= 0.5, Hungarian) to a distractor class are removed
first, then only gt of the pedestrian class is kept. It is off by default because MOT15 files
carry world coordinates in that column and cvray's own gt carries object classes there.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from cvray.track.io import CLS, CONF, FRAME, ID, X, split_frames
from cvray.track.metrics.clear import DevkitClearMetrics
from cvray.track.metrics.clear_trackeval import TrackEvalClearMetrics
from cvray.track.metrics.compat import iou_matrix
from cvray.track.metrics.hota import HotaMetrics
from cvray.track.metrics.identity import IdentityMetrics

__all__ = ["DEVKIT_KEYS", "FAMILIES", "MOTEvaluator", "combine", "evaluate_sequence", "summarize",
           "box_iou_xywh", "SUMMARY_KEYS"]

#: CLEAR as TrackEval computes it (top level), the devkit convention (under ``"devkit"``), identity, HOTA
FAMILIES = (TrackEvalClearMetrics, DevkitClearMetrics, IdentityMetrics, HotaMetrics)
#: MOT16/17 classes: 1 pedestrian (evaluated); distractors person-on-vehicle, static person,
#: distractor, reflection
EVAL_CLASSES = (1,)
DISTRACTOR_CLASSES = (2, 7, 8, 12)
#: keys printed by ``cvray track eval`` (and their order)
SUMMARY_KEYS = ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDP", "IDR", "IDSW",
                "Frag", "MT", "PT", "ML", "FP", "FN")
#: the CLEAR keys also reported in the devkit convention (``summarize(...)["devkit"]``)
DEVKIT_KEYS = ("MOTA", "MOTP", "IDSW", "Frag", "MT", "PT", "ML", "FP", "FN")
_MATCH_IOU = 0.5


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xywh boxes (motmetrics' kernel via the numpy-2 shim)."""
    return 1.0 - iou_matrix(a, b, max_iou=1.0)


def _drop_distractors(gt: np.ndarray, pr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: remove predictions matched to distractor gt, keep gt of evaluated classes."""
    keep_pr = np.ones(len(pr), dtype=bool)
    gt_frames, pr_index = split_frames(gt), {}
    for i, f in enumerate(pr[:, FRAME].astype(int)):
        pr_index.setdefault(int(f), []).append(i)
    for f, g in gt_frames.items():
        idx = np.asarray(pr_index.get(f, []), dtype=int)
        if len(idx) == 0 or not np.isin(g[:, CLS], DISTRACTOR_CLASSES).any():
            continue
        iou = box_iou_xywh(g[:, X:X + 4], pr[idx, X:X + 4])
        score = np.where(iou >= _MATCH_IOU - np.finfo(float).eps, iou, 0.0)
        rows, cols = linear_sum_assignment(-score)
        ok = score[rows, cols] > 0
        rows, cols = rows[ok], cols[ok]
        distractor = np.isin(g[rows, CLS], DISTRACTOR_CLASSES)
        keep_pr[idx[cols[distractor]]] = False
    gt = gt[(gt[:, CONF] != 0) & np.isin(gt[:, CLS], EVAL_CLASSES)]
    return gt, pr[keep_pr]


def preprocess(gt: np.ndarray, pr: np.ndarray, mot17_classes: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """Apply the devkit's gt filtering (see module docstring)."""
    if mot17_classes:
        return _drop_distractors(gt, pr)
    return gt[gt[:, CONF] != 0], pr


class MOTEvaluator:
    """Accumulator running every metric family over the frames of one sequence."""

    def __init__(self) -> None:
        self.metrics = [cls() for cls in FAMILIES]

    def reset(self) -> None:
        for m in self.metrics:
            m.reset()

    def update(self, gt_ids, gt_boxes, pr_ids, pr_boxes) -> None:
        """One frame: integer ids and xywh boxes of gt and predictions."""
        iou = box_iou_xywh(np.asarray(gt_boxes).reshape(-1, 4), np.asarray(pr_boxes).reshape(-1, 4))
        for m in self.metrics:
            m.update(np.asarray(gt_ids), np.asarray(pr_ids), iou)

    def compute(self) -> dict[str, dict]:
        return {m.name: m.compute() for m in self.metrics}


def evaluate_sequence(gt: np.ndarray, pr: np.ndarray, *, num_frames: int | None = None,
                      mot17_classes: bool = False) -> dict[str, dict]:
    """Partials of every family for one sequence (``(N, 10)`` MOT arrays, see :mod:`cvray.track.io`)."""
    gt, pr = preprocess(gt, pr, mot17_classes)
    gt_f, pr_f = split_frames(gt), split_frames(pr)
    last = max([num_frames or 0, *gt_f.keys(), *pr_f.keys()], default=0)
    ev = MOTEvaluator()
    empty = np.zeros((0, 10))
    for f in range(1, last + 1):
        g, p = gt_f.get(f, empty), pr_f.get(f, empty)
        ev.update(g[:, ID].astype(np.int64), g[:, X:X + 4], p[:, ID].astype(np.int64), p[:, X:X + 4])
    return ev.compute()


def combine(partials: list[dict[str, dict]]) -> dict[str, dict]:
    """Reduce per-sequence partials the way TrackEval combines sequences."""
    return {cls.name: cls.combine([p[cls.name] for p in partials]) for cls in FAMILIES}


def summarize(partial: dict[str, dict]) -> dict[str, Any]:
    """Named metrics (percentages for ratios, ints for counts); a family with a ``group`` (the
    devkit CLEAR values) is nested under that key: ``{"MOTA": <TrackEval>, ..., "devkit": {"MOTA": ...}}``."""
    out: dict[str, Any] = {}
    for cls in FAMILIES:
        values = cls.summarize(partial[cls.name])
        (out.setdefault(cls.group, {}) if cls.group else out).update(values)
    return out
