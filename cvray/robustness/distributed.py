"""Ray adapter of the robustness suite: a pool of model actors, one task per cell (the only Ray
module of the stage).

* Each actor (:class:`cvray.robustness.cells.CellWorker`, or for MOT data
  :class:`cvray.robustness.tracking.TrackingCellWorker`) loads the model once (a GPU, or a fraction of one, when the
  cluster has GPUs) and runs whole cells (:func:`cvray.robustness.cells.run_cell`): corrupt ->
  predict -> evaluate; it writes the cell's row as the cell's own part of the ``robustness``
  table (and its issue rows as the cell's part of ``issues``), so a retried cell replaces its
  part and a finished cell is never lost with its worker.
* A worker that dies (its node removed, OOM) is restarted by Ray (``max_restarts=-1``) and the
  cell it held is retried (``max_task_retries``); a cell that still fails becomes an issue row and
  the suite goes on.
* At most two cells are in flight per actor; ``on_progress`` is called as cells finish.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import ray

from cvray.robustness.cells import CellWorker
from cvray.robustness.records import Cell
from cvray.runs.issues import issue, issues_to_table

__all__ = ["run_cells_on_ray"]

log = logging.getLogger(__name__)


def run_cells_on_ray(run, cells: list[Cell], *, workers: int | None, cpus: float, gpus: float | None,
                     max_retries: int, worker_args: dict[str, Any],
                     on_progress: Callable[..., None] | None = None,
                     worker_cls: type = CellWorker) -> tuple[list[dict], list[dict]]:
    """Evaluate ``cells`` on a pool of model actors; returns (rows, failed-cell issue rows).

    A worker that dies (its node removed) takes its queued cells with it: they go back to the
    queue (at most ``max_retries`` times each) and the surviving workers take them; when none
    survives a new worker is started. A cell whose own code raises is not retried: it becomes a
    ``robustness.cell_failed`` issue row and the suite goes on.
    """
    from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

    if not cells:
        return [], []
    res = ray.cluster_resources()
    if gpus is None:
        gpus = 1.0 if res.get("GPU", 0) > 0 else 0.0
    fit = max(1, int(res.get("CPU", 1) // cpus)) if cpus else len(cells)
    if gpus:
        fit = max(1, min(fit, int(res.get("GPU", 0) // gpus)))
    n = max(1, min(workers or fit, len(cells)))
    actor = ray.remote(worker_cls).options(num_cpus=cpus, num_gpus=gpus, max_restarts=0)
    pool: dict[int, Any] = {k: actor.remote(run, **worker_args) for k in range(n)}
    todo = list(cells)
    inflight: dict[Any, tuple[Cell, int]] = {}
    load = {k: 0 for k in pool}
    attempts: dict[tuple, int] = {}
    rows, failed = [], []
    done = 0
    next_id = [n]

    def fill() -> None:
        for k in list(pool):
            while todo and load[k] < 2:  # one running, one queued per worker
                cell = todo.pop(0)
                inflight[pool[k].run_cell.remote(cell)] = (cell, k)
                load[k] += 1

    def fail(cell: Cell, exc: BaseException) -> None:
        who = f" ({cell.detector} detections)" if hasattr(cell, "detector") else ""
        msg = f"{cell.model}{who} {cell.corruption} severity {cell.severity}: {type(exc).__name__}: {exc}"
        log.error("cell failed: %s", msg.splitlines()[0])
        failed.append(issue("robustness", "robustness.cell_failed", msg.splitlines()[0][:2000]).__dict__)

    fill()
    while inflight:
        ready, _ = ray.wait(list(inflight), num_returns=1)
        cell, k = inflight.pop(ready[0])
        if k in load:
            load[k] -= 1
        try:
            rows.append(ray.get(ready[0]))
        except (RayActorError, ActorDiedError, ActorUnavailableError) as exc:  # the worker is gone
            if k in pool:
                log.warning("robustness worker %d died (%s); its cells go back to the queue", k,
                            type(exc).__name__)
                del pool[k], load[k]
            attempts[cell.key] = attempts.get(cell.key, 0) + 1
            if attempts[cell.key] > max_retries:
                fail(cell, exc)
            else:
                todo.insert(0, cell)
            if not pool:  # nobody left: start a replacement (it waits for resources)
                next_id[0] += 1
                pool[next_id[0]], load[next_id[0]] = actor.remote(run, **worker_args), 0
            fill()
            continue
        except Exception as exc:  # the cell itself raised: not retried
            fail(cell, exc)
        done += 1
        if on_progress is not None:
            on_progress(done, len(cells), cell=f"{cell.corruption}/{cell.severity}")
        fill()
    if failed:
        run.write_table("issues", issues_to_table(failed), part="robustness-failed-cells")
    for a in pool.values():
        ray.kill(a)
    return rows, failed
