"""The accumulator protocol every MOT metric family follows (TrackEval's shape, Detectron2's verbs).

One instance evaluates one sequence: ``reset()``, then ``update(...)`` once per frame in order, then
``compute()`` returns a *partial*: a dict of plain Python numbers and lists (picklable, JSON- and
Parquet-friendly). ``combine(partials)`` reduces partials of many sequences into one partial the way
TrackEval combines sequences (sums of counts, never averages of ratios), and ``summarize(partial)``
turns a partial into the named metric values. That is a Ray ``map`` (one sequence per task) followed
by a ``reduce``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = ["SequenceMetric"]


class SequenceMetric(ABC):
    """Base class: per-frame ``update`` with ids and the gt x prediction IoU matrix."""

    #: short family name used as the key of its partial
    name: str = ""
    #: key under which :func:`~cvray.track.metrics.evaluate.summarize` nests this family's named
    #: values (``None``: at the top level), e.g. ``"devkit"`` for the old CLEAR convention
    group: str | None = None

    def __init__(self) -> None:
        self.reset()

    @abstractmethod
    def reset(self) -> None:
        """Forget everything accumulated (instances are reused across sequences)."""

    @abstractmethod
    def update(self, gt_ids: np.ndarray, pr_ids: np.ndarray, iou: np.ndarray) -> None:
        """Add one frame: ``gt_ids`` (G,), ``pr_ids`` (P,) integer ids and their (G, P) IoU matrix."""

    @abstractmethod
    def compute(self) -> dict:
        """Partial result of the frames seen so far (plain data)."""

    @staticmethod
    @abstractmethod
    def combine(partials: list[dict]) -> dict:
        """Reduce partials of several sequences into one partial."""

    @staticmethod
    @abstractmethod
    def summarize(partial: dict) -> dict[str, float]:
        """Named metric values of a partial."""
