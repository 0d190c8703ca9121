"""CLEAR MOT metrics (MOTA, MOTP, FP, FN, IDSW, Frag, MT/PT/ML) in the devkit convention, through ``motmetrics``.

This is the old MOTChallenge devkit convention as py-motmetrics implements it; ``cvray track eval``
reports it under ``devkit`` (``summarize`` nests it there, the metrics table as ``devkit_*``) beside
the TrackEval convention of :mod:`cvray.track.metrics.clear_trackeval`. A gt box and a prediction
may match when their IoU is at least 0.5 (motmetrics: IoU distance ``<= 0.5``); a gt keeps the
prediction it was last matched to while that pair stays valid, the others are assigned by
minimum-cost Hungarian matching on ``1 - IoU``; an ID switch is a gt matched to another id than
its last match; Frag counts tracked -> missed transitions between a gt's first and last match
(frames without the gt do not count); MT/PT/ML use ``>= 0.8`` / ``>= 0.2``. MOTA and MOTP are in
percent and MOTP is the mean IoU of matched pairs (motmetrics itself reports the mean *distance*
``1 - IoU``). Sequences combine by summing counts and recomputing the ratios (motmetrics' merged
"OVERALL" row).
"""
from __future__ import annotations

import numpy as np
import motmetrics as mm

from cvray.track.metrics.base import SequenceMetric

__all__ = ["DevkitClearMetrics", "CLEAR_COUNTS"]

#: partial fields (all additive over sequences)
CLEAR_COUNTS = ("num_gt", "TP", "FN", "FP", "IDSW", "Frag", "MT", "PT", "ML", "iou_sum", "num_gt_ids")

_MM_FIELDS = ["num_objects", "num_detections", "num_misses", "num_false_positives", "num_switches",
              "num_fragmentations", "mostly_tracked", "partially_tracked", "mostly_lost",
              "num_unique_objects", "motp"]


class DevkitClearMetrics(SequenceMetric):
    """Devkit-convention CLEAR MOT accumulator for one sequence (wraps ``motmetrics.MOTAccumulator``)."""

    name = "clear_devkit"
    group = "devkit"

    def __init__(self, iou_threshold: float = 0.5) -> None:
        self.iou_threshold = iou_threshold
        super().__init__()

    def reset(self) -> None:
        self._acc = mm.MOTAccumulator(auto_id=True)

    def update(self, gt_ids: np.ndarray, pr_ids: np.ndarray, iou: np.ndarray) -> None:
        dist = 1.0 - np.asarray(iou, dtype=np.float64).reshape(len(gt_ids), len(pr_ids))
        dist[dist > 1.0 - self.iou_threshold] = np.nan
        self._acc.update(list(np.asarray(gt_ids).tolist()), list(np.asarray(pr_ids).tolist()), dist)

    def compute(self) -> dict:
        if self._acc.events.empty:
            return {k: 0 for k in CLEAR_COUNTS} | {"iou_sum": 0.0}
        s = mm.metrics.create().compute(self._acc, metrics=_MM_FIELDS, return_dataframe=False)
        tp = int(s["num_detections"])
        motp_dist = float(s["motp"]) if tp else 0.0
        return {
            "num_gt": int(s["num_objects"]), "TP": tp, "FN": int(s["num_misses"]),
            "FP": int(s["num_false_positives"]), "IDSW": int(s["num_switches"]),
            "Frag": int(s["num_fragmentations"]), "MT": int(s["mostly_tracked"]),
            "PT": int(s["partially_tracked"]), "ML": int(s["mostly_lost"]),
            "num_gt_ids": int(s["num_unique_objects"]), "iou_sum": tp * (1.0 - motp_dist),
        }

    @staticmethod
    def combine(partials: list[dict]) -> dict:
        return {k: sum(p[k] for p in partials) for k in CLEAR_COUNTS}

    @staticmethod
    def summarize(partial: dict) -> dict[str, float]:
        n_gt, tp = partial["num_gt"], partial["TP"]
        errors = partial["FN"] + partial["FP"] + partial["IDSW"]
        return {
            "MOTA": 100.0 * (1.0 - errors / n_gt) if n_gt else float("nan"),
            "MOTP": 100.0 * partial["iou_sum"] / tp if tp else float("nan"),
            "FP": partial["FP"], "FN": partial["FN"], "IDSW": partial["IDSW"],
            "Frag": partial["Frag"], "MT": partial["MT"], "PT": partial["PT"], "ML": partial["ML"],
            "Recall": 100.0 * tp / n_gt if n_gt else float("nan"),
            "Precision": 100.0 * tp / (tp + partial["FP"]) if tp + partial["FP"] else float("nan"),
            "GT_IDs": partial["num_gt_ids"], "GT_dets": n_gt,
        }
