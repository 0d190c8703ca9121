"""Ray adapter: one stateful actor per sequence, many sequences in parallel.

Each :class:`SequenceActor` owns one tracker and processes its sequence's frames in order; the
driver keeps at most ``max_parallel`` actors alive, and every actor writes its own outputs under
fixed per-sequence names (see :mod:`cvray.track.sequence`), so re-running a failed sequence never
duplicates rows. A sequence that fails (bad file) comes back as an error row, not a crashed job.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

import ray

from cvray.track.config import TrackConfig
from cvray.track.sequence import SequenceJob, process_sequence

__all__ = ["SequenceActor", "track_sequences"]

log = logging.getLogger(__name__)


@ray.remote(num_cpus=1, max_restarts=1, max_task_retries=1)
class SequenceActor:
    """Holds the config; ``run`` tracks one sequence frame by frame and writes its results."""

    def __init__(self, config: dict) -> None:

        self.config = TrackConfig.model_validate(config)

    def run(self, job: dict, out_uri: str, render: bool = False) -> dict:
        job_ = SequenceJob(**job)
        try:
            return process_sequence(job_, self.config, out_uri, render=render)
        except (OSError, ValueError) as exc:  # bad input file: report it, keep the job going
            return {"sequence": job_.name, "error": f"{type(exc).__name__}: {exc}",
                    "file": job_.det_uri}


def track_sequences(jobs: Iterable[SequenceJob], config: TrackConfig, out_uri: str, *,
                    max_parallel: int | None = None, render: bool = False,
                    on_done: Callable[[dict], None] | None = None) -> list[dict]:
    """Track every job on the connected Ray cluster; returns per-sequence summaries in job order
    (``on_done(summary)`` as each sequence finishes)."""
    jobs = list(jobs)
    if max_parallel is None:
        max_parallel = max(1, int(ray.cluster_resources().get("CPU", 1)))
    cfg = config.model_dump(mode="json")
    pending: dict = {}
    results: dict[int, dict] = {}
    queue = list(enumerate(jobs))
    while queue or pending:
        while queue and len(pending) < max_parallel:
            i, job = queue.pop(0)
            actor = SequenceActor.remote(cfg)
            pending[actor.run.remote(job.to_dict(), out_uri, render)] = (i, actor)
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            i, actor = pending.pop(ref)
            try:
                results[i] = ray.get(ref)
            except ray.exceptions.RayError as exc:  # the actor died twice: record, go on
                results[i] = {"sequence": jobs[i].name, "error": f"{type(exc).__name__}: {exc}",
                              "file": jobs[i].det_uri}
            ray.kill(actor)
            if on_done is not None:
                on_done(results[i])
    return [results[i] for i in range(len(jobs))]
