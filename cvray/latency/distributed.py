"""Ray adapter of the latency stage (its only Ray module): the measurement runs inside one Ray
task with the resources of the node type it is meant for (a GPU when the cluster has one, CPUs
for the most threads timed), so a sheet submitted to a cluster times the worker hardware, not
the driver's. One worker, never two side by side: they would time each other."""
from __future__ import annotations

from typing import Any, Callable

import ray

__all__ = ["measure_on_ray"]


def measure_on_ray(job: dict[str, Any], *, on_progress: Callable[..., None] | None = None) -> tuple[str, list]:
    from cvray.latency.workflow import measure_all

    section = job["section"]
    res = ray.cluster_resources()
    gpus = section.gpus if section.gpus is not None else (1.0 if res.get("GPU", 0) > 0 and section.device != "cpu"
                                                          else 0.0)
    cpus = section.cpus or float(min(max(section.threads), max(1, int(res.get("CPU", 1)))))
    task = ray.remote(measure_all).options(num_cpus=cpus, num_gpus=gpus, max_retries=1)
    device, results = ray.get(task.remote(**job))
    if on_progress is not None:
        on_progress(len(results), len(results))
    return device, results
