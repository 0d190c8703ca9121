"""Stage timers and their statistics (pure; no Ray, no torch).

A :class:`StageClock` collects wall-clock durations (``time.perf_counter``) per named stage for
each image; :func:`stage_stats` turns them into p50 / p95 / p99 / mean and FPS (the percentiles
are numpy's ``linear`` method, the default of ``numpy.percentile``); :func:`budget_verdict` says
whether the per-image total meets a budget and, when not, which stage breaks it.
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Iterator

import numpy as np

__all__ = ["STAGES", "StageClock", "stage_stats", "budget_verdict", "PERCENTILES"]

#: the pipeline's stages, in the order an image goes through them
STAGES: tuple[str, ...] = ("decode", "preprocess", "inference", "nms", "mask_paste", "postprocess",
                           "tracking", "serialization")
PERCENTILES: tuple[int, ...] = (50, 95, 99)


class StageClock:
    """Durations in seconds per stage, one latency sample per image, and the busy time per stage.

    A batch's duration is every one of its images' latency in that stage (an image waits for its
    whole batch), while throughput counts the batch once: ``fps = images / busy seconds``. So a
    bigger batch shows as higher FPS and, usually, higher latency -- the trade the sheet is for."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.busy: dict[str, float] = defaultdict(float)
        self.images: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        self.samples.clear()
        self.busy.clear()
        self.images.clear()

    def add(self, stage: str, seconds: float, images: int = 1) -> None:
        if images < 1:
            raise ValueError(f"stage {stage!r}: a duration needs at least one image (got {images})")
        self.samples[stage].extend([seconds] * images)
        self.busy[stage] += seconds
        self.images[stage] += images

    def merge(self, other: "StageClock") -> None:
        for k, v in other.samples.items():
            self.samples[k].extend(v)
            self.busy[k] += other.busy[k]
            self.images[k] += other.images[k]

    @contextlib.contextmanager
    def time(self, stage: str, images: int = 1) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0, images)


def _row(stage: str, s: np.ndarray, busy: float | None, images: int | None) -> dict:
    q = np.percentile(s, PERCENTILES) if len(s) else [np.nan] * len(PERCENTILES)
    mean = float(s.mean()) if len(s) else float("nan")
    return {"stage": stage, "n": int(len(s)), "mean_ms": 1e3 * mean,
            **{f"p{p}_ms": 1e3 * float(v) for p, v in zip(PERCENTILES, q)},
            "fps": (images / busy) if busy and images else None}


def stage_stats(clock: StageClock) -> list[dict]:
    """One row per stage present (in :data:`STAGES` order, then any other), plus ``total``: the
    per-image sum over stages (so its percentiles are of whole images, not sums of percentiles;
    its FPS is images over the summed busy time)."""
    samples = clock.samples
    names = [s for s in STAGES if samples.get(s)] + sorted(k for k in samples if k not in STAGES and samples[k])
    rows = [_row(n, np.asarray(samples[n], float), clock.busy.get(n), clock.images.get(n)) for n in names]
    n = min((len(samples[k]) for k in names), default=0)
    total = np.sum([np.asarray(samples[k][:n], float) for k in names], axis=0) if n else np.zeros(0)
    busy = sum(clock.busy.get(k, 0.0) for k in names)
    return rows + [_row("total", total, busy, n)]


def budget_verdict(rows: list[dict], budget_ms: float, *, at: str = "p95_ms") -> dict:
    """``{"met", "total_ms", "budget_ms", "breaks", "share"}``: the total's ``at`` percentile against
    the budget; ``breaks`` is the stage with the largest ``at`` -- the one to work on first -- when
    the budget is not met (None when it is)."""
    by = {r["stage"]: r for r in rows}
    if "total" not in by:
        raise ValueError("budget_verdict needs the rows of stage_stats (a 'total' row)")
    total = by["total"][at]
    stages = [r for r in rows if r["stage"] != "total" and r[at] == r[at]]
    worst = max(stages, key=lambda r: r[at]) if stages else None
    met = bool(total <= budget_ms)
    return {"met": met, "total_ms": total, "budget_ms": float(budget_ms), "at": at,
            "breaks": None if met or worst is None else worst["stage"],
            "share": (worst[at] / total) if worst is not None and total else None}
