"""One trial of a search, without Ray: a ``cvray train`` run that reports at every evaluation.

:func:`run_trial` is the trial body the Ray adapter calls inside a Tune trial
(:mod:`cvray.tune.distributed`); it is plain training (:func:`cvray.train.workflow.fit`, the same
worker code and hooks as ``cvray train``) plus :class:`ReportHook`, which hands every
evaluation's metrics and the checkpoint written at that iteration to ``report``. The trial's own
tables and checkpoints live in its run (``<tune run>/trials/<trial id>/``).
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Callable

import torch

from cvray.train.checkpoint import unwrap
from cvray.train.config import TrainConfig
from cvray.train.hooks import Hook
from cvray.train.workflow import TrainInputs, fit, make_job

__all__ = ["ReportHook", "run_trial", "weights_sha"]

log = logging.getLogger(__name__)

Report = Callable[[dict[str, Any], str | None], None]  # report(metrics, checkpoint uri)


def weights_sha(state_dict: dict[str, Any]) -> str:
    """SHA-256 of a model state dict's tensors in key order (16 hex digits): the identity of a
    set of weights, to show which checkpoint a trial continued from."""
    h = hashlib.sha256()
    for k in sorted(state_dict):
        v = state_dict[k]
        h.update(k.encode())
        if torch.is_tensor(v):
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class ReportHook(Hook):
    """After each evaluation (and the checkpoint the hooks write at the same iteration, which
    :func:`run_trial` arranges), ``report(metrics, checkpoint_uri)``; ``metrics`` holds every
    numeric metric of the evaluation, ``iteration`` (the trial's own step counter, which the
    schedulers use as their time) and ``evaluation`` (1, 2, ...)."""

    def __init__(self, report: Report, period: int, extra: dict[str, Any] | None = None):
        self.report, self.period, self.extra = report, period, dict(extra or {})
        self._seen: Any = None
        self._reported: int | None = None
        self.evaluations = 0

    def _send(self, state) -> None:
        self._seen, self._reported = state.metrics, state.iteration
        self.evaluations += 1
        metrics = {k: float(v) for k, v in state.metrics.items() if isinstance(v, (int, float))}
        metrics.update(iteration=int(state.iteration), evaluation=self.evaluations,
                       weights_sha=weights_sha(unwrap(state.model).state_dict()), **self.extra)
        ckpt = state.last_checkpoint if state.last_checkpoint_iter == state.iteration else None
        self.report(metrics, ckpt)

    def before_train(self, state):
        self._seen = state.metrics  # a restored checkpoint's metrics were reported by its writer
        self.evaluations = state.iteration // self.period  # the evaluations before the restore

    def after_step(self, state, logs):
        if state.is_main and state.metrics and state.metrics is not self._seen:
            self._send(state)

    def after_train(self, state):
        if state.is_main and state.stop_reason is None and state.metrics and self._reported != state.iteration:
            self._send(state)


def run_trial(section: TrainConfig, dataset: str, *, run: Any, seed: int, report: Report,
              initial_checkpoint: dict | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``section`` on ``dataset`` in this process, reporting at every evaluation.

    A checkpoint is written at every evaluation (``checkpoint_period`` = ``eval_period``), so
    every report carries one: a stopped, paused or exploited trial resumes exactly where it
    reported. ``initial_checkpoint`` (Tune's, possibly another trial's under PBT) is restored
    first. Returns the training summary.
    """
    if not section.eval_period:
        raise ValueError("a tuned training must evaluate during training: set train.eval_period > 0")
    section = section.model_copy(update={"checkpoint_period": section.eval_period, "tensorboard": False})
    hook = ReportHook(report, section.eval_period, extra)
    job = make_job(run, section, TrainInputs(dataset, seed=seed), extra_hooks=[hook])
    if job.val_annotations is None:
        raise ValueError(f"{dataset}: no {section.val_split} split to evaluate trials on")
    if run is not None:
        run.update(dataset={"uri": dataset, "train": job.train_annotations, "val": job.val_annotations})
    return fit(job, initial_checkpoint=initial_checkpoint)
