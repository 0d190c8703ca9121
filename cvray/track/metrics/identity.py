"""Identity metrics (IDF1, IDP, IDR) through ``motmetrics``' global ID assignment.

IDTP/IDFP/IDFN come from motmetrics' minimum-cost bipartite matching of whole trajectories (Ristani
et al. 2016, as in the MOTChallenge devkit and TrackEval's ``Identity``) at IoU >= 0.5. Sequences
combine by summing IDTP/IDFP/IDFN; ratios are reported in percent.
"""
from __future__ import annotations

import numpy as np
import motmetrics as mm

from cvray.track.metrics.base import SequenceMetric

__all__ = ["IdentityMetrics"]

_FIELDS = ("IDTP", "IDFP", "IDFN")


class IdentityMetrics(SequenceMetric):
    """Identity accumulator for one sequence (wraps ``motmetrics.MOTAccumulator``)."""

    name = "identity"

    def __init__(self, iou_threshold: float = 0.5) -> None:
        self.iou_threshold = iou_threshold
        super().__init__()

    def reset(self) -> None:
        self._acc = mm.MOTAccumulator(auto_id=True)
        self._n_gt = 0
        self._n_pr = 0

    def update(self, gt_ids: np.ndarray, pr_ids: np.ndarray, iou: np.ndarray) -> None:
        dist = 1.0 - np.asarray(iou, dtype=np.float64).reshape(len(gt_ids), len(pr_ids))
        dist[dist > 1.0 - self.iou_threshold] = np.nan
        self._acc.update(list(np.asarray(gt_ids).tolist()), list(np.asarray(pr_ids).tolist()), dist)
        self._n_gt += len(gt_ids)
        self._n_pr += len(pr_ids)

    def compute(self) -> dict:
        if self._n_gt == 0 or self._n_pr == 0:  # motmetrics cannot assign with an empty side
            return {"IDTP": 0, "IDFP": self._n_pr, "IDFN": self._n_gt}
        s = mm.metrics.create().compute(self._acc, metrics=["idtp", "idfp", "idfn"],
                                        return_dataframe=False)
        return {"IDTP": int(round(s["idtp"])), "IDFP": int(round(s["idfp"])),
                "IDFN": int(round(s["idfn"]))}

    @staticmethod
    def combine(partials: list[dict]) -> dict:
        return {k: sum(p[k] for p in partials) for k in _FIELDS}

    @staticmethod
    def summarize(partial: dict) -> dict[str, float]:
        tp, fp, fn = partial["IDTP"], partial["IDFP"], partial["IDFN"]
        nan = float("nan")
        return {
            "IDF1": 100.0 * 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else nan,
            "IDP": 100.0 * tp / (tp + fp) if tp + fp else nan,
            "IDR": 100.0 * tp / (tp + fn) if tp + fn else nan,
            "IDTP": tp, "IDFP": fp, "IDFN": fn,
        }
