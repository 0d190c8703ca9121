"""The training loop as plain functions over a :class:`TrainState` -- runs with or without Ray.

``train_loop`` is a couple dozen lines; timing, LR, evaluation, checkpointing and logging live in
small hook classes (:mod:`cvray.train.hooks`). The same loop runs in a plain process
(``fit`` in :mod:`cvray.train.workflow`) and inside each Ray Train worker, where the model is
DDP-wrapped and the batches come from the worker's Ray Data shard.

One *iteration* is one optimizer step over ``grad_accum_steps`` micro-batches.

The step guard: a step whose loss or global gradient norm is non-finite never reaches the
weights. It is checked before ``optimizer.step()`` (the loss check agreed by every worker with an
all-reduce, so DDP workers take the same branch instead of hanging; the gradient norm is computed
from the all-reduced gradients, so it is the same on every worker), and the step is *skipped*:
no optimizer step, no scheduler step, gradients zeroed, ``skipped=1`` in the curves table. After
``max_skipped_steps`` consecutive skips (``train.optim.max_skipped_steps``; 0 = stop at the
first) :class:`NonFiniteLossError` ends the loop with a message naming the first bad iteration,
the loss parts and the last good checkpoint; no checkpoint is written during a run of skips.
Nothing here calls ``sys.exit``.
"""
from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.distributed as dist

from cvray.train.data import Sample

__all__ = ["NonFiniteLossError", "StepOptions", "TrainState", "positives", "run_step",
           "train_loop", "train_one_epoch"]

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/inf; training stopped before the bad step touched the weights."""


@dataclass(frozen=True)
class StepOptions:
    accum_steps: int = 1
    clip_grad_norm: float | None = None
    amp: bool = False
    device: torch.device = torch.device("cpu")
    max_skipped_steps: int = 3


@dataclass
class TrainState:
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    max_iter: int
    scaler: Any = None
    iteration: int = 0
    rank: int = 0
    world_size: int = 1
    best_metric: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # last evaluation
    stop_reason: str | None = None
    last_checkpoint: str | None = None
    last_checkpoint_iter: int | None = None
    augment: Any = None  # the worker's Compose (its RNG goes into checkpoints)
    skip_streak: int = 0             # consecutive skipped (non-finite) steps, ending now
    skipped_steps: int = 0           # all skipped steps of the run
    first_bad: str | None = None     # what the first step of the current streak saw

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def positives(targets: list[dict]) -> int:
    """Diagnostic: foreground instances (or labelled foreground pixels) in a batch.

    A run of batches with zero positives means the sampler or augmentation starves the heads.
    """
    n = 0
    for t in targets:
        if "labels" in t:
            n += int(len(t["labels"]))
        elif "sem_seg" in t:
            s = t["sem_seg"]
            n += int(((s > 0) & (s != 255)).sum())
    return n


def run_step(state: TrainState, micro_batches: list[list[Sample]], opts: StepOptions) -> dict[str, float]:
    """One optimizer step over ``micro_batches``; returns the logged scalars.

    1. forward + backward per micro-batch, loss scaled by 1/accum (DDP syncs only on the last);
    2. agree across workers that every loss part is finite, else raise NonFiniteLossError;
    3. unscale (AMP), clip the global grad norm, optimizer step, zero grads.
    """
    model, opt = state.model, state.optimizer
    sums: dict[str, float] = {}
    n_img = n_pos = 0
    finite = True
    for k, batch in enumerate(micro_batches):
        images = [s.image.to(opts.device, non_blocking=True) for s in batch]
        targets = [{key: v.to(opts.device, non_blocking=True) for key, v in s.target.items()} for s in batch]
        last = k == len(micro_batches) - 1
        sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with torch.autocast(device_type=opts.device.type, enabled=opts.amp):
                losses = model(images, targets)
            total = sum(losses.values())
            finite &= bool(torch.isfinite(total.detach()))
            loss = total / len(micro_batches)
            # backward even when non-finite: under DDP every worker must join the gradient
            # all-reduce; the step is refused below, after all workers agree.
            (state.scaler.scale(loss) if state.scaler is not None else loss).backward()
        for key, v in losses.items():
            sums[key] = sums.get(key, 0.0) + float(v.detach()) / len(micro_batches)
        n_img += len(images)
        n_pos += positives(targets)
    # 2. every worker must take the same branch, or DDP's next all-reduce would hang.
    if _distributed():
        flag = torch.tensor([0.0 if finite else 1.0], device=opts.device)
        dist.all_reduce(flag)
        finite = flag.item() == 0
    parts = ", ".join(f"{k}={v:.4g}" for k, v in sums.items())
    lr = opt.param_groups[0]["lr"]
    base = {"loss": sum(sums.values()), **sums, "lr": lr, "images": n_img, "positives": n_pos}
    if not finite:
        return _skip(state, opts, f"non-finite loss at iteration {state.iteration + 1} ({parts})",
                     {**base, "grad_norm": float("nan")})
    # 3.
    if state.scaler is not None:
        state.scaler.unscale_(opt)
    params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
    max_norm = opts.clip_grad_norm if opts.clip_grad_norm is not None else math.inf
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm)) if params else 0.0
    if not math.isfinite(grad_norm) and state.scaler is None:
        # (under AMP an overflow is the GradScaler's business: it skips the step and lowers its
        # scale; here a finite loss with an inf/NaN gradient would write non-finite weights)
        return _skip(state, opts, f"non-finite gradient norm at iteration {state.iteration + 1} "
                                  f"(loss finite: {parts})", {**base, "grad_norm": grad_norm})
    if state.scaler is not None:
        state.scaler.step(opt)
        state.scaler.update()
    else:
        opt.step()
    opt.zero_grad(set_to_none=True)
    state.skip_streak, state.first_bad = 0, None
    return {**base, "grad_norm": grad_norm, "skipped": 0.0}


def _skip(state: TrainState, opts: StepOptions, why: str, logs: dict[str, float]) -> dict[str, float]:
    """Refuse the step (weights, optimizer and schedule untouched); stop after too many in a row."""
    state.optimizer.zero_grad(set_to_none=True)
    state.skip_streak += 1
    state.skipped_steps += 1
    state.first_bad = state.first_bad or why
    log.warning("step skipped: %s (%d in a row, limit %d)", why, state.skip_streak, opts.max_skipped_steps)
    if state.skip_streak > opts.max_skipped_steps or opts.max_skipped_steps == 0:
        raise NonFiniteLossError(f"{state.first_bad}; {state.skip_streak} consecutive step(s) skipped")
    return {**logs, "skipped": 1.0}


def _next_micro_batches(batches: Iterator[list[Sample]], n: int) -> list[list[Sample]] | None:
    out = []
    for _ in range(n):
        b = next(batches, None)
        if b is None:
            return None
        out.append(b)
    return out


def train_one_epoch(state: TrainState, batches: Iterable[list[Sample]], opts: StepOptions,
                    hooks: list) -> bool:
    """Train over ``batches`` once (or until ``max_iter``); returns False when training must end."""
    it = iter(batches)
    while state.iteration < state.max_iter:
        t0 = time.perf_counter()
        micro = _next_micro_batches(it, opts.accum_steps)
        if micro is None:
            return True  # epoch exhausted
        t1 = time.perf_counter()
        logs = run_step(state, micro, opts)
        state.iteration += 1
        logs.update(data_time=t1 - t0, time=time.perf_counter() - t0)
        for h in hooks:
            h.after_step(state, logs)
    return False


def train_loop(state: TrainState, epochs: Callable[[int], Iterable[list[Sample]]], opts: StepOptions,
               hooks: list, *, start_epoch: int = 0) -> TrainState:
    """Run epochs (``epochs(e)`` gives epoch ``e``'s batches) until ``state.max_iter``.

    A :class:`NonFiniteLossError` stops the loop: hooks still see ``after_train`` (with
    ``state.stop_reason`` set, so no checkpoint overwrites the last good one), then the error
    is re-raised with the last good checkpoint named.
    """
    for h in hooks:
        h.before_train(state)
    epoch = start_epoch
    try:
        while state.iteration < state.max_iter:
            before = state.iteration
            if not train_one_epoch(state, epochs(epoch), opts, hooks):
                break
            if state.iteration == before:
                raise RuntimeError("the training data yielded no batch (empty split, every image "
                                   "unreadable, or fewer images than batch_size per worker)")
            epoch += 1
    except NonFiniteLossError as exc:
        state.stop_reason = str(exc)
        for h in hooks:
            h.after_train(state)
        where = (f"{state.last_checkpoint} (iteration {state.last_checkpoint_iter})"
                 if state.last_checkpoint else "none written yet")
        raise NonFiniteLossError(f"training stopped: {exc}; last good checkpoint: {where}. Lower "
                                 f"optim.lr, raise optim.warmup_iters or set optim.clip_grad_norm") from None
    for h in hooks:
        h.after_train(state)
    return state
