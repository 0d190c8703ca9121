"""Ray adapter of the calibration stage (its only Ray module): a pool of model actors, one task per
slice (the fit split clean, the eval split clean and under each corruption x severity).

Each actor (:class:`cvray.calibrate.workflow.SliceWorker`) loads the model once (a GPU, or a
fraction of one, when the cluster has GPUs) and returns a slice's matched detections
(scores, TP flags, IoUs, boxes: a few arrays per detection) to the driver, which fits and scores
the calibrators; nothing is written by the workers. An actor that dies is restarted by Ray and
its slice retried (``max_task_retries``); a slice that still fails becomes a
``calibrate.slice_failed`` issue row (a slice is a corruption x severity cell of the split).
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import ray

from cvray.calibrate.workflow import Slice, SliceResult, SliceWorker
from cvray.runs.issues import issue

__all__ = ["run_slices_on_ray"]

log = logging.getLogger(__name__)


def run_slices_on_ray(slices: list[Slice], *, workers: int | None, cpus: float, gpus: float | None,
                      max_retries: int, worker_args: dict[str, Any],
                      on_progress: Callable[..., None] | None = None) -> tuple[list[SliceResult], list[dict]]:
    """Run ``slices`` on a pool of model actors; returns (results, failed-slice issue rows)."""
    if not slices:
        return [], []
    res = ray.cluster_resources()
    if gpus is None:
        gpus = 1.0 if res.get("GPU", 0) > 0 else 0.0
    fit = max(1, int(res.get("CPU", 1) // cpus))
    if gpus:
        fit = max(1, min(fit, int(res.get("GPU", 0) // gpus)))
    n = max(1, min(workers or fit, len(slices)))
    actor = ray.remote(SliceWorker).options(num_cpus=cpus, num_gpus=gpus, max_restarts=-1,
                                            max_task_retries=max_retries)
    args_ref = {k: (ray.put(v) if k == "splits" else v) for k, v in worker_args.items()}
    pool = [actor.remote(**args_ref) for _ in range(n)]
    todo = list(slices)
    inflight: dict[Any, tuple[Slice, int]] = {}
    load = [0] * n
    results, failed = [], []

    def fill() -> None:
        for k in range(n):
            while todo and load[k] < 2:  # one running, one queued per actor
                s = todo.pop(0)
                inflight[pool[k].run_slice.remote(s)] = (s, k)
                load[k] += 1

    fill()
    try:
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1)
            s, k = inflight.pop(ready[0])
            load[k] -= 1
            try:
                results.append(ray.get(ready[0]))
            except Exception as exc:  # the slice raised, or its actor died max_retries times
                msg = f"{s.label}: {type(exc).__name__}: {exc}".splitlines()[0][:2000]
                log.error("calibration slice failed: %s", msg)
                failed.append(issue("calibrate", "calibrate.slice_failed", msg).__dict__)
            if on_progress is not None:
                on_progress(len(results) + len(failed), len(slices), slice=s.label)
            fill()
    finally:
        for a in pool:
            ray.kill(a)
    return results, failed
