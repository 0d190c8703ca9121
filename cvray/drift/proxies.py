"""Prediction proxies: label-free summaries of a model's outputs over a window of frames.

Why: without labels the accuracy of a deployed detector cannot be measured, but its outputs move
when the input or the task shifts -- mean confidence falls under covariate shift (Hendrycks &
Gimpel 2017, "A baseline for detecting misclassified and out-of-distribution examples"), the class
mix moves under label shift (Lipton et al. 2018, "Detecting and correcting for label shift with
black box predictors" monitor exactly the predicted-class distribution), and trackers fragment
when detections flicker. These are the "metrics" columns of the shift matrix.

Definitions, per window:

* ``mean_confidence``: mean score over all detections; ``frame_confidence``: per non-empty
  frame, the mean score of its detections (the sample PSI / KS compare).
* ``class_mix``: detections per class label as proportions.
* ``empty_rate``: fraction of frames with no detection.
* ``abstention_rate``: fraction of detections whose decision is ``"abstain"``, over detections
  that carry a decision; None when none did.
* ``track_lifetimes``: per track id, the number of frames it appears in (inside this window:
  tracks are cut at window edges); ``fragmentation_rate``: the number of gaps (maximal runs of
  missing frames between a track's first and last frame) summed over tracks, over the tracks.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ["PredictionProxies", "track_stats"]


def track_stats(frames_by_track: dict[str, Sequence[int]]) -> tuple[list[int], list[int]]:
    """``(lifetimes, gaps)`` per track (sorted by id) from ``{track id: frame indices}``."""
    lifetimes, gaps = [], []
    for tid in sorted(frames_by_track, key=str):
        f = np.unique(np.asarray(frames_by_track[tid], dtype=np.int64))
        lifetimes.append(int(f.size))
        gaps.append(int((np.diff(f) > 1).sum()))
    return lifetimes, gaps


class PredictionProxies:
    """Accumulator of the proxies of one window: ``reset / update / compute / partial / combine``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._s: dict[str, Any] = {"frames": 0, "empty": 0, "detections": 0, "score_sum": 0.0,
                                   "frame_confidence": [], "frame_detections": [], "class_counts": {},
                                   "decided": 0, "abstained": 0, "tracks": {}}

    def update(self, scores: Sequence[float] | np.ndarray, labels: Sequence[Any] | np.ndarray | None = None,
               *, decisions: Sequence[str] | None = None, track_ids: Sequence[Any] | None = None,
               frame_index: int | None = None) -> None:
        """Add one frame's detections; ``frame_index`` (default: frames seen so far) places tracks."""
        s = self._s
        sc = np.asarray(scores, dtype=np.float64).ravel()
        n = int(sc.size)
        for name, arr in (("labels", labels), ("decisions", decisions), ("track_ids", track_ids)):
            if arr is not None and len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} entries for {n} scores")
        if n and not np.all(np.isfinite(sc)):
            raise ValueError("scores must be finite")
        index = s["frames"] if frame_index is None else int(frame_index)
        s["frames"] += 1
        s["frame_detections"].append(n)
        if n == 0:
            s["empty"] += 1
            return
        s["detections"] += n
        s["score_sum"] += float(sc.sum())
        s["frame_confidence"].append(float(sc.mean()))
        for lab in ([] if labels is None else labels):
            key = str(lab.item() if isinstance(lab, np.generic) else lab)
            s["class_counts"][key] = s["class_counts"].get(key, 0) + 1
        if decisions is not None:
            s["decided"] += n
            s["abstained"] += sum(1 for d in decisions if d == "abstain")
        for tid in ([] if track_ids is None else track_ids):
            key = str(tid.item() if isinstance(tid, np.generic) else tid)
            s["tracks"].setdefault(key, []).append(index)

    def partial(self) -> dict[str, Any]:
        """The state as plain picklable data (lists and dicts), for :meth:`combine`."""
        s = self._s
        return {**s, "frame_confidence": list(s["frame_confidence"]),
                "frame_detections": list(s["frame_detections"]), "class_counts": dict(s["class_counts"]),
                "tracks": {k: list(v) for k, v in s["tracks"].items()}}

    @classmethod
    def combine(cls, partials: Iterable[dict[str, Any]]) -> "PredictionProxies":
        """One accumulator holding the union of ``partials`` (same window, split across workers)."""
        out = cls()
        s = out._s
        for p in partials:
            for k in ("frames", "empty", "detections", "score_sum", "decided", "abstained"):
                s[k] += p[k]
            s["frame_confidence"].extend(p["frame_confidence"])
            s["frame_detections"].extend(p["frame_detections"])
            for k, v in p["class_counts"].items():
                s["class_counts"][k] = s["class_counts"].get(k, 0) + v
            for k, v in p["tracks"].items():
                s["tracks"].setdefault(k, []).extend(v)
        return out

    def compute(self) -> dict[str, Any]:
        """The proxies of the window (see module docstring); plain, JSON-ready data."""
        s = self._s
        lifetimes, gaps = track_stats(s["tracks"])
        total = sum(s["class_counts"].values())
        return {
            "frames": s["frames"],
            "detections": s["detections"],
            "mean_confidence": s["score_sum"] / s["detections"] if s["detections"] else None,
            "frame_confidence": list(s["frame_confidence"]),
            "frame_detections": list(s["frame_detections"]),
            "class_counts": dict(s["class_counts"]),
            "class_mix": {k: v / total for k, v in sorted(s["class_counts"].items())} if total else {},
            "empty_rate": s["empty"] / s["frames"] if s["frames"] else None,
            "empty_counts": {"empty": s["empty"], "non_empty": s["frames"] - s["empty"]},
            "abstention_rate": s["abstained"] / s["decided"] if s["decided"] else None,
            "abstention_counts": ({"abstain": s["abstained"], "other": s["decided"] - s["abstained"]}
                                  if s["decided"] else None),
            "track_lifetimes": lifetimes,
            "track_gaps": gaps,
            "fragmentation_rate": sum(gaps) / len(gaps) if gaps else None,
        }
