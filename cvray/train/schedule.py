"""Optimizer and learning-rate schedule from :class:`OptimConfig`.

The schedule is a pure function of the iteration (``lr_factor``), wrapped in ``LambdaLR`` so its
state (``last_epoch`` = iterations done) round-trips through the checkpoint and a resumed run
continues with exactly the same learning rate.
"""
from __future__ import annotations

import bisect
import math

import torch

from cvray.train.config import OptimConfig

__all__ = ["WarmupSchedule", "build_optimizer", "build_scheduler"]


class WarmupSchedule:
    """Multiplier of the base lr at iteration ``it``: linear warmup, then step / cosine / constant.

    1. warmup: factor rises linearly from ``warmup_factor`` at 0 to 1 at ``warmup_iters``;
    2. step: multiplied by ``gamma`` at each milestone already passed;
       cosine: half cosine from 1 down to ``min_lr_factor`` at ``max_iter``.
    """

    def __init__(self, cfg: OptimConfig, max_iter: int):
        self.cfg, self.max_iter = cfg, max_iter

    def __call__(self, it: int) -> float:
        c = self.cfg
        if c.schedule == "step":
            f = c.gamma ** bisect.bisect_right(sorted(c.steps), it)
        elif c.schedule == "cosine":
            t = min(it, self.max_iter) / self.max_iter
            f = c.min_lr_factor + (1 - c.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))
        else:
            f = 1.0
        if it < c.warmup_iters:
            alpha = it / c.warmup_iters
            f *= c.warmup_factor * (1 - alpha) + alpha
        return f


def build_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_iter: int):
    schedule = WarmupSchedule(cfg, max_iter)
    # A plain function, not the object: LambdaLR.state_dict() would copy an object's __dict__
    # (the config) into the checkpoint, which weights_only loading then refuses.
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: schedule(it))
