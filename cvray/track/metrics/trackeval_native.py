"""Every metric as TrackEval 1.3 computes it: HOTA, CLEAR (MOTA, IDSW, ...) and Identity (IDF1).

This module calls ``trackeval.metrics`` itself. The families of this package give the same
numbers (CLEAR of :mod:`~cvray.track.metrics.clear_trackeval` exactly, HOTA and IDF1 to ~1e-13;
the devkit CLEAR of :mod:`~cvray.track.metrics.clear` differs, docs/tracking.md "Metric
conventions"). Benchmarks that compare trackers use this module so that every number comes from
TrackEval's own code. gt preprocessing is :func:`evaluate.preprocess`
(``conf == 0`` rows dropped; MOT17 distractor rule with ``mot17_classes``), the per-sequence data
dict is TrackEval's own (ids remapped to contiguous indices, similarity = box IoU).

Example::

    >>> part = trackeval_sequence(gt_rows, pred_rows, mot17_classes=True)
    >>> trackeval_summary(trackeval_combine([part]))["HOTA"]
"""
from __future__ import annotations

import numpy as np
from trackeval.metrics import CLEAR, HOTA, Identity

from cvray.track.io import FRAME, ID, X, split_frames
from cvray.track.metrics.evaluate import box_iou_xywh, preprocess

__all__ = ["trackeval_combine", "trackeval_sequence", "trackeval_summary"]

_FAMILIES = {"HOTA": HOTA, "CLEAR": CLEAR, "Identity": Identity}


def _metric(name: str):
    cls = _FAMILIES[name]
    return cls({"PRINT_CONFIG": False}) if name != "HOTA" else cls()


def _data(gt: np.ndarray, pr: np.ndarray, num_frames: int | None) -> dict:
    gt_f, pr_f = split_frames(gt), split_frames(pr)
    last = max([num_frames or 0, *gt_f.keys(), *pr_f.keys()], default=0)
    empty = np.zeros((0, 10))
    gt_u = {int(i): k for k, i in enumerate(np.unique(gt[:, ID]))}
    pr_u = {int(i): k for k, i in enumerate(np.unique(pr[:, ID]))}
    data: dict = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for f in range(1, last + 1):
        g, p = gt_f.get(f, empty), pr_f.get(f, empty)
        data["gt_ids"].append(np.array([gt_u[int(i)] for i in g[:, ID]], np.int64))
        data["tracker_ids"].append(np.array([pr_u[int(i)] for i in p[:, ID]], np.int64))
        data["similarity_scores"].append(box_iou_xywh(g[:, X:X + 4], p[:, X:X + 4]).reshape(len(g), len(p)))
    data.update(num_timesteps=last, num_gt_dets=len(gt), num_tracker_dets=len(pr),
                num_gt_ids=len(gt_u), num_tracker_ids=len(pr_u))
    return data


def trackeval_sequence(gt: np.ndarray, pr: np.ndarray, *, num_frames: int | None = None,
                       mot17_classes: bool = False) -> dict[str, dict]:
    """``{family: TrackEval result dict}`` for one sequence (``(N, 10)`` MOT arrays)."""
    gt, pr = preprocess(np.asarray(gt, float).reshape(-1, 10), np.asarray(pr, float).reshape(-1, 10),
                        mot17_classes)
    gt, pr = gt[np.argsort(gt[:, FRAME], kind="stable")], pr[np.argsort(pr[:, FRAME], kind="stable")]
    data = _data(gt, pr, num_frames)
    return {name: _metric(name).eval_sequence(data) for name in _FAMILIES}


def trackeval_combine(partials: list[dict[str, dict]]) -> dict[str, dict]:
    """TrackEval's ``combine_sequences`` per family (sums of counts, ratios recomputed)."""
    return {name: _metric(name).combine_sequences({str(i): p[name] for i, p in enumerate(partials)})
            for name in _FAMILIES}


def trackeval_summary(res: dict[str, dict]) -> dict[str, float]:
    """Named numbers in percent (counts as ints): HOTA, DetA, AssA, LocA, IDF1, MOTA, MOTP, IDSW ..."""
    h, c, i = res["HOTA"], res["CLEAR"], res["Identity"]
    out = {k: 100.0 * float(np.mean(h[k])) for k in ("HOTA", "DetA", "AssA", "LocA")}
    out.update({k: 100.0 * float(c[k]) for k in ("MOTA", "MOTP")})
    out.update({k: int(c[k]) for k in ("IDSW", "Frag", "CLR_FP", "CLR_FN", "MT", "ML")})
    out.update({k: 100.0 * float(i[k]) for k in ("IDF1", "IDP", "IDR")})
    return out
