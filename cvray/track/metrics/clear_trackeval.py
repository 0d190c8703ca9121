"""CLEAR MOT metrics (MOTA, MOTP, FP, FN, IDSW, Frag, MT/PT/ML) as TrackEval 1.3 computes them.

This is the convention MOTChallenge reports today (TrackEval's ``trackeval.metrics.CLEAR``), and
the one ``cvray track eval`` prints first; :mod:`cvray.track.metrics.clear` keeps the old devkit
convention (py-motmetrics) beside it. A streaming re-implementation of ``CLEAR.eval_sequence``,
step for step, so that every count and every float comes out bit-identical to TrackEval's (tested
against ``trackeval.metrics.CLEAR`` itself on real MOTChallenge sequences):

* **Matching, per frame**: Hungarian (``linear_sum_assignment``) maximising the score
  ``1000 * [same tracker id as this gt's match in the previous step] + IoU``, where pairs with
  ``IoU < 0.5 - eps`` score 0 and a pair is a match only when its score is ``> eps`` -- the
  IoU >= 0.5 threshold is applied to the scores *before* and the zero-score pairs are dropped
  *after* the assignment (it maximises summed IoU, not the number of matches). The "previous
  step" is the last frame that had both gt and tracker boxes (TrackEval skips frames where either
  side is empty without touching its state).
* **IDSW**: a matched gt whose last matched tracker id (any number of frames earlier) differs.
* **Frag**: per gt id, the number of matched runs minus one, a run starting whenever the gt is
  matched and was not matched in the previous step.
* **MT / PT / ML**: matched fraction of the gt's frames ``> 0.8`` / ``>= 0.2`` (and not MT) / the rest.
* **MOTA** ``= (TP - FP - IDSW) / max(1, TP + FN)``, **MOTP** ``= sum IoU of matches / max(1, TP)``
  (0, not NaN, without matches), both in percent here.
* A sequence with no gt or no tracker box is all FP / all FN, with its ratios 0 (TrackEval does
  not finalise it; its combined row does recompute them).
* Sequences combine by summing the counts and ``MOTP_sum`` and recomputing the ratios
  (``CLEAR.combine_sequences``); MOTP is thereby TP-weighted.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from cvray.track.metrics.base import SequenceMetric

__all__ = ["TrackEvalClearMetrics", "TRACKEVAL_CLEAR_COUNTS"]

#: partial fields, all additive over sequences (``MOTP_sum`` a float, the rest ints); the names
#: are TrackEval's ``CLEAR.summed_fields`` plus ``num_gt_ids``
TRACKEVAL_CLEAR_COUNTS = ("CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag", "CLR_Frames",
                          "MOTP_sum", "num_gt_ids")
_EPS = np.finfo("float").eps
_FRACTIONS = ("MOTA", "MOTP", "MODA", "sMOTA", "MOTAL", "CLR_Re", "CLR_Pr", "CLR_F1", "MTR", "PTR", "MLR",
              "FP_per_frame")


class TrackEvalClearMetrics(SequenceMetric):
    """TrackEval-convention CLEAR accumulator for one sequence (pure numpy + scipy)."""

    name = "clear"

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = float(threshold)
        super().__init__()

    def reset(self) -> None:
        self._index: dict[int, int] = {}          # gt id -> contiguous index
        self._id_count = np.zeros(0)              # frames each gt is present
        self._matched_count = np.zeros(0)         # frames each gt is matched
        self._frag_count = np.zeros(0)            # matched runs started per gt
        self._prev_tracker = np.zeros(0)          # last matched tracker id (NaN: never), for IDSW
        self._prev_step = np.zeros(0)             # tracker id matched in the previous step, for matching
        self._counts = dict.fromkeys(("CLR_TP", "CLR_FN", "CLR_FP", "IDSW"), 0)
        self._motp_sum = 0
        self._frames = self._n_gt = self._n_pr = 0

    def _indices(self, gt_ids: np.ndarray) -> np.ndarray:
        idx = np.array([self._index.setdefault(int(i), len(self._index)) for i in gt_ids], dtype=np.int64)
        grow = len(self._index) - len(self._id_count)
        if grow > 0:
            zeros, nans = np.zeros(grow), np.full(grow, np.nan)
            self._id_count = np.concatenate([self._id_count, zeros])
            self._matched_count = np.concatenate([self._matched_count, zeros])
            self._frag_count = np.concatenate([self._frag_count, zeros])
            self._prev_tracker = np.concatenate([self._prev_tracker, nans])
            self._prev_step = np.concatenate([self._prev_step, nans])
        return idx

    def update(self, gt_ids: np.ndarray, pr_ids: np.ndarray, iou: np.ndarray) -> None:
        gt = self._indices(np.asarray(gt_ids).reshape(-1))
        pr = np.asarray(pr_ids, dtype=np.int64).reshape(-1)
        self._frames += 1
        self._n_gt += len(gt)
        self._n_pr += len(pr)
        c = self._counts
        if len(gt) == 0:
            c["CLR_FP"] += len(pr)
            return
        if len(pr) == 0:
            c["CLR_FN"] += len(gt)
            self._id_count[gt] += 1
            return
        similarity = np.asarray(iou, dtype=np.float64).reshape(len(gt), len(pr))
        score = 1000 * (pr[np.newaxis, :] == self._prev_step[gt[:, np.newaxis]]) + similarity
        score[similarity < self.threshold - _EPS] = 0
        rows, cols = linear_sum_assignment(-score)
        ok = score[rows, cols] > 0 + _EPS
        rows, cols = rows[ok], cols[ok]
        matched_gt, matched_pr = gt[rows], pr[cols]

        prev = self._prev_tracker[matched_gt]
        c["IDSW"] += int(np.sum(~np.isnan(prev) & np.not_equal(matched_pr, prev)))
        self._id_count[gt] += 1
        self._matched_count[matched_gt] += 1
        not_previously_tracked = np.isnan(self._prev_step)
        self._prev_tracker[matched_gt] = matched_pr
        self._prev_step[:] = np.nan
        self._prev_step[matched_gt] = matched_pr
        self._frag_count += not_previously_tracked & ~np.isnan(self._prev_step)

        n = len(matched_gt)
        c["CLR_TP"] += n
        c["CLR_FN"] += len(gt) - n
        c["CLR_FP"] += len(pr) - n
        if n > 0:
            self._motp_sum += sum(similarity[rows, cols])  # TrackEval's summation order, bit for bit

    def compute(self) -> dict:
        n_ids = len(self._index)
        out = {k: 0 for k in TRACKEVAL_CLEAR_COUNTS} | {"MOTP_sum": 0.0, "num_gt_ids": n_ids}
        # TrackEval returns early when a side is empty: all FN (every gt id mostly lost) or all FP,
        # no frames counted, and the ratios of that sequence left at 0 (MLR 1) -- ``empty`` marks it
        if self._n_pr == 0:
            return out | {"CLR_FN": self._n_gt, "ML": n_ids, "empty": True}
        if self._n_gt == 0:
            return out | {"CLR_FP": self._n_pr, "empty": True}
        present = self._id_count > 0
        ratio = self._matched_count[present] / self._id_count[present]
        mt = int(np.sum(np.greater(ratio, 0.8)))
        pt = int(np.sum(np.greater_equal(ratio, 0.2))) - mt
        return out | {k: int(v) for k, v in self._counts.items()} | {
            "MT": mt, "PT": pt, "ML": n_ids - mt - pt,
            "Frag": int(np.sum(self._frag_count[self._frag_count > 0] - 1)),
            "CLR_Frames": self._frames, "MOTP_sum": float(self._motp_sum)}

    @staticmethod
    def combine(partials: list[dict]) -> dict:
        out = {k: sum(p[k] for p in partials) for k in TRACKEVAL_CLEAR_COUNTS}
        out["MOTP_sum"] = float(out["MOTP_sum"])
        return out

    @staticmethod
    def fractions(partial: dict) -> dict[str, float]:
        """TrackEval's ``CLEAR._compute_final_fields`` (fractions, not percent), same expressions."""
        if partial.get("empty"):  # a single sequence TrackEval did not finalise (see compute)
            return {k: (1.0 if k == "MLR" else 0.0) for k in _FRACTIONS}
        tp, fn, fp, idsw = partial["CLR_TP"], partial["CLR_FN"], partial["CLR_FP"], partial["IDSW"]
        n_ids = partial["MT"] + partial["PT"] + partial["ML"]
        per_id, per_gt = np.maximum(1.0, n_ids), np.maximum(1.0, tp + fn)
        log_idsw = np.log10(idsw) if idsw > 0 else idsw
        return {
            "MOTA": float((tp - fp - idsw) / per_gt), "MOTP": float(partial["MOTP_sum"] / np.maximum(1.0, tp)),
            "MODA": float((tp - fp) / per_gt), "sMOTA": float((partial["MOTP_sum"] - fp - idsw) / per_gt),
            "MOTAL": float((tp - fp - log_idsw) / per_gt),
            "CLR_Re": float(tp / per_gt), "CLR_Pr": float(tp / np.maximum(1.0, tp + fp)),
            "CLR_F1": float(tp / np.maximum(1.0, tp + 0.5 * fn + 0.5 * fp)),
            "MTR": float(partial["MT"] / per_id), "PTR": float(partial["PT"] / per_id),
            "MLR": float(partial["ML"] / per_id),
            "FP_per_frame": float(fp / np.maximum(1.0, partial["CLR_Frames"])),
        }

    @staticmethod
    def summarize(partial: dict) -> dict[str, float]:
        f = TrackEvalClearMetrics.fractions(partial)
        return {
            "MOTA": 100.0 * f["MOTA"], "MOTP": 100.0 * f["MOTP"], "MODA": 100.0 * f["MODA"],
            "sMOTA": 100.0 * f["sMOTA"], "MOTAL": 100.0 * f["MOTAL"],
            "FP": partial["CLR_FP"], "FN": partial["CLR_FN"], "TP": partial["CLR_TP"],
            "IDSW": partial["IDSW"], "Frag": partial["Frag"],
            "MT": partial["MT"], "PT": partial["PT"], "ML": partial["ML"],
            "Recall": 100.0 * f["CLR_Re"], "Precision": 100.0 * f["CLR_Pr"],
            "GT_IDs": partial["num_gt_ids"], "GT_dets": partial["CLR_TP"] + partial["CLR_FN"],
        }
