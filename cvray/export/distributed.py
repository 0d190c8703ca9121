"""Ray adapter of the export stage (its only Ray module): the export, parity, latency, INT8
calibration and the suite run inside one Ray task with the resources of a worker node (its CPUs,
a GPU when the cluster has one and onnxruntime can use it), so a job submitted to a cluster
exports and times on the worker hardware, not on the driver. One task: the latency numbers of two
side by side would time each other."""
from __future__ import annotations

from typing import Any, Callable

import ray

__all__ = ["export_on_ray"]


def export_on_ray(run, job: dict[str, Any], *, on_progress: Callable[..., None] | None = None) -> dict[str, Any]:
    from cvray.export.workflow import export_all

    section = job["section"]
    cpus = float(min(section.threads, max(1, int(ray.cluster_resources().get("CPU", 1)))))
    task = ray.remote(export_all).options(num_cpus=cpus, max_retries=1)
    try:
        res = ray.get(task.remote(run, **job))
    except ray.exceptions.RayTaskError as exc:  # a user mistake found on the worker: one line, exit 2
        from cvray.runs.errors import InputError

        cause = getattr(exc, "cause", None)
        if isinstance(cause, InputError):
            raise InputError(str(cause)) from None
        raise
    if on_progress is not None:
        on_progress(1, 1)
    return res
