"""The evaluator protocol shared by detection evaluators (Detectron2's ``reset / process /
evaluate``) plus ``partial / combine`` so per-worker partials reduce like a Ray aggregate."""
from __future__ import annotations

from typing import Any, Iterable

__all__ = ["ResultsAccumulator"]


class ResultsAccumulator:
    """Collects predictions in COCO results format; subclasses implement :meth:`evaluate`."""

    def reset(self) -> None:
        self._results: list[dict] = []

    def _check(self, batch: list[dict]) -> None:
        """Validate a batch before it is kept (subclasses raise with a message naming the record)."""

    def process(self, results: Iterable[dict]) -> None:
        """Add predictions (dicts are copied, the caller's stay intact)."""
        batch = [dict(r) for r in results]
        self._check(batch)
        self._results.extend(batch)

    update = process  # accumulator spelling

    def partial(self) -> list[dict]:
        """This evaluator's picklable partial state."""
        return list(self._results)

    def combine(self, partials: Iterable[list[dict]]) -> None:
        """Merge partials from other workers into this evaluator."""
        for p in partials:
            self._results.extend(dict(r) for r in p)

    def evaluate(self) -> Any:
        raise NotImplementedError
