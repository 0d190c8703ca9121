"""HOTA family (HOTA, DetA, AssA, LocA, DetRe/Pr, AssRe/Pr) through ``trackeval.metrics.HOTA``.

TrackEval's HOTA is pure numpy on a per-sequence data dict; we build that dict frame by frame
(ids remapped to contiguous indices, similarity = box IoU) and call ``HOTA.eval_sequence``.
Sequences combine with ``HOTA.combine_sequences`` -- HOTA/DetA are recomputed from the summed
TP/FN/FP counts per alpha, AssA/LocA are TP-weighted -- then every field is averaged over the 19
alpha thresholds (0.05..0.95) and reported in percent.
"""
from __future__ import annotations

import numpy as np
from trackeval.metrics import HOTA as _TrackEvalHOTA

from cvray.track.metrics.base import SequenceMetric

__all__ = ["HotaMetrics"]

_ARRAY_FIELDS = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA",
                 "HOTA_TP", "HOTA_FN", "HOTA_FP")
_SUMMARY = ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr")


class HotaMetrics(SequenceMetric):
    """HOTA accumulator for one sequence."""

    name = "hota"

    def reset(self) -> None:
        self._gt_index: dict[int, int] = {}
        self._pr_index: dict[int, int] = {}
        self._gt_ids: list[np.ndarray] = []
        self._pr_ids: list[np.ndarray] = []
        self._sims: list[np.ndarray] = []

    @staticmethod
    def _remap(ids: np.ndarray, index: dict[int, int]) -> np.ndarray:
        return np.array([index.setdefault(int(i), len(index)) for i in ids], dtype=np.int64)

    def update(self, gt_ids: np.ndarray, pr_ids: np.ndarray, iou: np.ndarray) -> None:
        self._gt_ids.append(self._remap(gt_ids, self._gt_index))
        self._pr_ids.append(self._remap(pr_ids, self._pr_index))
        self._sims.append(np.asarray(iou, dtype=np.float64).reshape(len(gt_ids), len(pr_ids)))

    def compute(self) -> dict:
        data = {
            "gt_ids": self._gt_ids, "tracker_ids": self._pr_ids, "similarity_scores": self._sims,
            "num_gt_dets": int(sum(len(g) for g in self._gt_ids)),
            "num_tracker_dets": int(sum(len(p) for p in self._pr_ids)),
            "num_gt_ids": len(self._gt_index), "num_tracker_ids": len(self._pr_index),
            "num_timesteps": len(self._gt_ids),
        }
        res = _TrackEvalHOTA().eval_sequence(data)
        return {k: (np.asarray(v, dtype=np.float64).tolist() if k in _ARRAY_FIELDS else float(v))
                for k, v in res.items()}

    @staticmethod
    def combine(partials: list[dict]) -> dict:
        if len(partials) == 1:
            return dict(partials[0])
        arrays = {str(i): {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in p.items()}
                  for i, p in enumerate(partials)}
        res = _TrackEvalHOTA().combine_sequences(arrays)
        return {k: (np.asarray(v, dtype=np.float64).tolist() if k in _ARRAY_FIELDS else float(v))
                for k, v in res.items()}

    @staticmethod
    def summarize(partial: dict) -> dict[str, float]:
        out = {k: 100.0 * float(np.mean(partial[k])) for k in _SUMMARY}
        out["HOTA(0)"] = 100.0 * float(partial["HOTA(0)"])
        out["LocA(0)"] = 100.0 * float(partial["LocA(0)"])
        return out
