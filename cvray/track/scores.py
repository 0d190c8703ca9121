"""Detector score models: map whatever scale a detector's scores come in onto [0, 1].

Detectors disagree on what a score is. MOT15's ACF detections have raw scores from about -0.8 to
139, SORT's Faster R-CNN detections lie in [0.5, 1], MOT17's FRCNN ones in [0.05, 1]; a tracker
whose thresholds assume calibrated [0, 1] scores silently keeps every ACF detection and drops most
of the same detections once someone rescales them. ``track.scores`` says how scores are read:

* ``rank`` (default): a score becomes its rank among the *distinct* score values of the
  sequence, as a fraction: ``#{distinct values <= s} / #{distinct values}`` (a dense rank).
  Every score threshold of :class:`~cvray.track.config.TrackConfig` is then a rank:
  ``high_score=0.2`` means "above the lowest fifth of the score values this detector gave in
  this sequence". Any increasing rescaling of the scores (min-max, affine, logit, ...) gives the
  same ranks, so the tracker's output does not depend on the detector's scale at all. Distinct
  values rather than detections, because a detector that saturates (MOT17's FRCNN gives more
  than half of its boxes exactly 1.0) would otherwise push every unsaturated box to the bottom.
* ``quantile``: the empirical CDF over detections, ``#{detections <= s} / #{detections}``
  (also scale-free; measured worse on MOT17's saturated scores, docs/tracking.md).
* ``minmax``: ``(s - min) / (max - min)`` over the sequence (depends on the extremes).
* ``raw``: scores used as given (they should be calibrated confidences in [0, 1]).

The distribution comes from the whole sequence when it is known in advance (``fit``: a det.txt or
a predictions table, what ``cvray track`` has); a stream (``cvray track --video``) is ranked
against the scores seen so far (``partial_fit`` per frame, the first frame ranked against itself).

Example::

    >>> m = ScoreModel("rank").fit(np.array([-0.5, 3.0, 3.0, 20.0, 139.0]))
    >>> m.transform(np.array([3.0, 20.0]))
    array([0.5 , 0.75])
"""
from __future__ import annotations

import numpy as np

__all__ = ["SCORE_MODES", "ScoreModel", "check_scores"]

SCORE_MODES = ("rank", "quantile", "minmax", "raw")
#: a stream keeps at most this many scores to rank against (then the reference is frozen): enough
#: for percent-level ranks, and a bounded per-frame cost
MAX_REFERENCE = 4096


def check_scores(scores: np.ndarray, source: str = "<scores>") -> None:
    """Raise ``ValueError`` naming ``source`` when a score is NaN or infinite."""
    bad = ~np.isfinite(scores)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{source}: {int(bad.sum())} non-finite detection score(s), first at row {i + 1} "
                         f"({scores[i]!r})")


class ScoreModel:
    """Maps scores of one sequence onto [0, 1] (see the module docstring); ``reset()`` per sequence."""

    def __init__(self, mode: str = "rank") -> None:
        if mode not in SCORE_MODES:
            raise ValueError(f"track.scores: expected one of {SCORE_MODES}, got {mode!r}")
        self.mode = mode
        self.reset()

    def reset(self) -> None:
        self._ref = np.zeros(0)          # sorted reference scores
        self.fitted = False              # True: reference from the whole sequence (frozen)
        self._step: float | None = None

    def fit(self, scores: np.ndarray) -> "ScoreModel":
        """Take the whole sequence's scores as the reference distribution (frozen)."""
        s = np.asarray(scores, np.float64).ravel()
        check_scores(s)
        self._ref = np.unique(s) if self.mode == "rank" else np.sort(s)
        self.fitted = True
        # __call__'s per-frame shortcut: the rank fraction's factor (transform's numbers)
        self._step = 1.0 / len(self._ref) if self.mode in ("rank", "quantile") and len(self._ref) else None
        return self

    def partial_fit(self, scores: np.ndarray) -> None:
        """Add a frame's scores to the reference (streams; no-op once fitted or full)."""
        if self.fitted or self.mode == "raw" or len(self._ref) >= MAX_REFERENCE or len(scores) == 0:
            return
        new = np.unique(scores) if self.mode == "rank" else np.sort(np.asarray(scores, np.float64))
        at = np.searchsorted(self._ref, new)
        if self.mode == "rank" and len(self._ref):
            fresh = self._ref[np.minimum(at, len(self._ref) - 1)] != new     # not yet in the reference
            new, at = new[fresh], at[fresh]
        self._ref = np.insert(self._ref, at, new)               # stays sorted: O(n) per frame

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Scores on [0, 1]: rank fraction (rank, quantile), min-max scaled, or as given (raw)."""
        if self.mode == "raw" or len(scores) == 0:
            return scores
        ref = self._ref
        n = len(ref)
        if n == 0:
            return np.ones_like(scores, dtype=np.float64)
        if self.mode in ("rank", "quantile"):
            return ref.searchsorted(scores, side="right") * (1.0 / n)     # (the method: no dispatch layer)
        lo, span = ref[0], ref[-1] - ref[0]
        if span <= 0:
            return np.ones_like(scores, dtype=np.float64)
        return np.clip((scores - lo) / span, 0.0, 1.0)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """One frame of a stream or a fitted sequence: update the reference if streaming, map."""
        if not self.fitted:
            self.partial_fit(scores)
        elif self._step is not None and len(scores):
            return self._ref.searchsorted(scores, side="right") * self._step    # = transform(scores)
        return self.transform(scores)
