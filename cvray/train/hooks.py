"""Small hooks around :func:`cvray.train.engine.train_loop` (Detectron2's pattern).

Each hook sees ``before_train(state)``, ``after_step(state, logs)`` and ``after_train(state)``.
Order matters and is fixed in one place, :func:`default_hooks`: LR -> timing -> metrics/logging
-> eval -> checkpoint -> progress, so a checkpoint always carries the metrics of the evaluation at
the same iteration, and a best checkpoint is written right after the evaluation that earned it
(the checkpoint hook runs next and saves ``best`` when :attr:`EvalHook.improved_at` is this
iteration). Hooks that write results act on the main worker only; hooks that need every worker
(evaluation, RNG gathering for checkpoints) run on all of them.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist

from cvray.train.checkpoint import CheckpointStore, capture_rng, unwrap

__all__ = ["CheckpointHook", "DefaultHooks", "EvalHook", "Hook", "LRSchedulerHook", "MetricsHook",
           "ProgressHook", "TimingHook", "default_hooks", "restore"]

log = logging.getLogger(__name__)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


class Hook:
    def before_train(self, state) -> None:
        pass

    def after_step(self, state, logs: dict[str, float]) -> None:
        pass

    def after_train(self, state) -> None:
        pass


class LRSchedulerHook(Hook):
    """Advance the per-iteration schedule after each optimizer step."""

    def after_step(self, state, logs):
        if not logs.get("skipped"):  # a skipped (non-finite) step leaves the schedule where it was
            state.scheduler.step()


class TimingHook(Hook):
    """Wall time of the whole loop and throughput (images/s over all workers)."""

    def __init__(self):
        self.start = self.end = None
        self.images = 0
        self.step_time = 0.0

    def before_train(self, state):
        self.start = time.perf_counter()

    def after_step(self, state, logs):
        self.images += int(logs["images"]) * state.world_size
        self.step_time += logs["time"]
        logs["images_per_s"] = logs["images"] * state.world_size / max(logs["time"], 1e-9)

    def after_train(self, state):
        self.end = time.perf_counter()

    def summary(self) -> dict[str, float]:
        wall = (self.end or time.perf_counter()) - (self.start or time.perf_counter())
        return {"train_wall_s": wall, "images_seen": self.images,
                "images_per_s": self.images / self.step_time if self.step_time else 0.0}


class MetricsHook(Hook):
    """Keeps every iteration's scalars; logs every ``period``; feeds the writer (main worker)."""

    def __init__(self, period: int, writer: Any = None):
        self.period, self.writer = period, writer
        self.rows: list[dict[str, float]] = []

    def after_step(self, state, logs):
        row = {"iteration": state.iteration, **{k: float(v) for k, v in logs.items()}}
        self.rows.append(row)
        if not state.is_main:
            return
        if self.writer is not None:
            self.writer.scalars(row, state.iteration)
        if state.iteration % self.period == 0 or state.iteration == state.max_iter:
            parts = " ".join(f"{k}={v:.4f}" for k, v in logs.items() if k.startswith("loss"))
            log.info("iter %d/%d %s lr=%.3g positives=%d %.2fs/it", state.iteration, state.max_iter,
                     parts, logs["lr"], logs["positives"], logs["time"])

    def after_train(self, state):
        if state.is_main and self.writer is not None:
            self.writer.curves(self.rows)


class EvalHook(Hook):
    """Evaluate every ``period`` iterations and at the end.

    ``eval_fn(state) -> (metrics, per_class_rows)`` runs on every worker (it gathers the
    workers' partials) and returns the same metrics everywhere, so all workers agree on whether
    this evaluation is the best so far (:attr:`improved_at`) and the checkpoint hook after it
    writes ``best.pt`` on all of them together.
    """

    def __init__(self, period: int, eval_fn: Callable, metric: str, *, writer: Any = None,
                 curves: "MetricsHook | None" = None):
        self.period, self.eval_fn, self.metric = period, eval_fn, metric
        self.writer, self.curves = writer, curves
        self.history: list[dict[str, float]] = []
        self.improved_at: int | None = None  # iteration of the last evaluation that set a best
        self._last = None

    def _run(self, state):
        t0 = time.perf_counter()
        metrics, rows = self.eval_fn(state)
        metrics = {**metrics, "eval_time": time.perf_counter() - t0}
        self._last = state.iteration
        state.metrics = metrics
        self.history.append({"iteration": state.iteration, **metrics})
        value = metrics.get(self.metric)
        if value is None:
            raise KeyError(f"train.best_metric={self.metric!r} is not among the evaluation's "
                           f"metrics ({', '.join(sorted(metrics))})")
        improved = value == value and (state.best_metric is None or value > state.best_metric)
        if state.is_main:
            log.info("eval at iter %d: %s", state.iteration,
                     " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
            if self.writer is not None:
                self.writer.eval(state.iteration, metrics, rows, self.history,
                                 self.curves.rows if self.curves else [])
        if improved:
            state.best_metric = value
            self.improved_at = state.iteration

    def after_step(self, state, logs):
        if self.period and state.iteration % self.period == 0 and state.iteration < state.max_iter:
            self._run(state)

    def after_train(self, state):
        if state.stop_reason is None and self._last != state.iteration:
            self._run(state)


class CheckpointHook(Hook):
    """Write ``latest`` every ``period`` iterations and at the end; ``best`` right after an
    evaluation of ``evals`` (the :class:`EvalHook` before it) that improved the best metric.

    Every worker calls :meth:`save` (the RNG states of all workers are gathered); only the main
    worker writes. ``on_saved(state, name, uri)`` runs on every worker afterwards -- the Ray
    adapter uses it to report the checkpoint to Ray Train.
    """

    def __init__(self, store: CheckpointStore, period: int, metric: str, *,
                 evals: EvalHook | None = None, on_saved: Callable | None = None):
        self.store, self.period, self.metric = store, period, metric
        self.evals, self.on_saved = evals, on_saved
        self.write_times: list[float] = []
        self._last = None
        self._best = None  # iteration of the last best.pt

    def state_dict(self, state) -> dict[str, Any]:
        rng = capture_rng(state.augment.get_state() if state.augment is not None else None)
        if _distributed():
            gathered: list = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, rng)
            rngs = dict(enumerate(gathered))
        else:
            rngs = {0: rng}
        return {
            "model": unwrap(state.model).state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(),
            "scaler": state.scaler.state_dict() if state.scaler is not None else None,
            "iteration": state.iteration,
            "rng": rngs,
            "world_size": state.world_size,
            "metrics": dict(state.metrics),
            "best_metric": state.best_metric,
            "metric_name": self.metric,
        }

    def save(self, state, name: str) -> None:
        ckpt = self.state_dict(state)  # collective: every worker takes part
        bad = [k for k, v in ckpt["model"].items() if torch.is_tensor(v) and v.is_floating_point()
               and not bool(torch.isfinite(v).all())]
        if bad:  # the last line of defence: a non-finite weight never reaches a checkpoint
            from cvray.train.engine import NonFiniteLossError

            raise NonFiniteLossError(f"{len(bad)} weight tensor(s) are non-finite ({bad[:3]}); "
                                     f"{name}.pt not written")
        if state.is_main:
            self.write_times.append(self.store.save(name, ckpt))
        if name == "latest":
            state.last_checkpoint, state.last_checkpoint_iter = self.store.path(name), state.iteration
            self._last = state.iteration
        if self.on_saved is not None:
            self.on_saved(state, name, self.store.path(name))

    def _save_best(self, state) -> None:
        if self.evals is not None and self.evals.improved_at == state.iteration != self._best:
            self._best = state.iteration
            self.save(state, "best")

    def after_step(self, state, logs):
        if state.skip_streak:  # during a run of skipped steps no checkpoint replaces the last good one
            return
        self._save_best(state)
        if state.iteration % self.period == 0 and state.iteration < state.max_iter:
            self.save(state, "latest")

    def after_train(self, state):
        # after a non-finite loss (or during a run of skipped steps) the last good checkpoint stays
        if state.stop_reason is None and not state.skip_streak:
            self._save_best(state)
            if self._last != state.iteration:
                self.save(state, "latest")


class ProgressHook(Hook):
    """``report(done, total, loss=..., <metric>=...)`` on the main worker after every iteration and
    once at the end (with the final evaluation's metric); runs after eval and checkpoint."""

    def __init__(self, report: Callable[..., None], metric: str):
        self.report, self.metric = report, metric

    def _info(self, state) -> dict[str, Any]:
        value = state.metrics.get(self.metric)
        return {self.metric: value} if isinstance(value, (int, float)) else {}

    def after_step(self, state, logs):
        if state.is_main:
            self.report(state.iteration, state.max_iter, loss=logs.get("loss"), **self._info(state))

    def after_train(self, state):
        if state.is_main and state.stop_reason is None:
            self.report(state.iteration, state.max_iter, **self._info(state))


@dataclass
class DefaultHooks:
    """The hooks every training run has, by name (the worker's summary reads them)."""

    lr: LRSchedulerHook
    timing: TimingHook
    metrics: MetricsHook
    eval: EvalHook | None = None
    checkpoint: CheckpointHook | None = None
    progress: ProgressHook | None = None

    def ordered(self) -> list[Hook]:
        """The hooks in the order they run (see the module docstring)."""
        return [h for h in (self.lr, self.timing, self.metrics, self.eval, self.checkpoint, self.progress)
                if h is not None]


def default_hooks(*, metric: str, log_period: int, writer: Any = None, eval_fn: Callable | None = None,
                  eval_period: int = 0, store: CheckpointStore | None = None, checkpoint_period: int = 1,
                  on_saved: Callable | None = None, on_progress: Callable | None = None) -> DefaultHooks:
    """The training hooks, built in the order they run.

    ``writer`` (:class:`cvray.train.outputs.TrainOutputs` or None) gets the curves and
    evaluations; ``eval_fn`` None = no validation split; ``store`` None = no checkpoints (no run).
    Every ``latest`` checkpoint also rewrites the curves on the main worker (so the curves up to
    a checkpoint survive a stop), then calls ``on_saved(state, name, uri)`` (the Ray adapter's
    report to Ray Train). ``on_progress(done, total, **info)`` gets every iteration (main worker).
    """
    lr, timing = LRSchedulerHook(), TimingHook()
    metrics = MetricsHook(log_period, writer=writer)
    evals = (EvalHook(eval_period, eval_fn, metric, writer=writer, curves=metrics)
             if eval_fn is not None else None)
    checkpoint = None
    if store is not None:
        def saved(state, name: str, uri: str) -> None:
            if name == "latest" and state.is_main and writer is not None:
                writer.curves(metrics.rows, evals.history if evals is not None else [])
            if on_saved is not None:
                on_saved(state, name, uri)

        checkpoint = CheckpointHook(store, checkpoint_period, metric, evals=evals, on_saved=saved)
    progress = ProgressHook(on_progress, metric) if on_progress is not None else None
    return DefaultHooks(lr, timing, metrics, evals, checkpoint, progress)


def restore(state, ckpt: dict[str, Any], *, rank: int = 0) -> None:
    """Load a checkpoint into ``state`` (model, optimizer, scheduler, scaler, RNG of ``rank``)."""
    from cvray.train.checkpoint import restore_rng

    unwrap(state.model).load_state_dict(ckpt["model"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    if state.scaler is not None and ckpt.get("scaler"):
        state.scaler.load_state_dict(ckpt["scaler"])
    state.iteration = int(ckpt["iteration"])
    state.best_metric = ckpt.get("best_metric")
    state.metrics = dict(ckpt.get("metrics") or {})
    rngs = ckpt.get("rng") or {}
    # a run resumed on fewer/more workers: ranks without a saved state keep their fresh seed
    if rank in rngs:
        aug = restore_rng(rngs[rank])
        if aug is not None and state.augment is not None:
            state.augment.set_state(aug)
    torch.set_grad_enabled(True)
