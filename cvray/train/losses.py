"""Semantic-segmentation losses: cross-entropy, Dice, focal and CE+Dice.

All take logits ``N x C x H x W`` and targets ``N x H x W`` (int64). Pixels equal to
``ignore_index`` take no part: they are masked out of every term (numerator and denominator),
not merely given a zero weight. ``class_weights`` (one per class, background included) weight
CE/focal per pixel and Dice per class.

Example::

    >>> loss = build_loss(LossConfig(kind="ce_dice", ignore_index=255), num_classes=3)
    >>> loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long)).item() > 0
    True
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvray.train.config import LossConfig

__all__ = ["CEDiceLoss", "DiceLoss", "FocalLoss", "build_loss"]


def _weights(class_weights, num_classes: int) -> torch.Tensor | None:
    if class_weights is None:
        return None
    if len(class_weights) != num_classes:
        raise ValueError(f"loss.class_weights has {len(class_weights)} entries, the model has "
                         f"{num_classes} classes (background included)")
    return torch.tensor(class_weights, dtype=torch.float32)


class DiceLoss(nn.Module):
    """1 - mean soft Dice over classes present in prediction or target (ignored pixels masked)."""

    def __init__(self, num_classes: int, *, ignore_index: int = 255, smooth: float = 1.0,
                 weight: torch.Tensor | None = None):
        super().__init__()
        self.num_classes, self.ignore_index, self.smooth = num_classes, ignore_index, smooth
        self.register_buffer("weight", weight if weight is not None else torch.ones(num_classes))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = (target != self.ignore_index).unsqueeze(1).to(logits.dtype)  # N1HW
        prob = logits.float().softmax(1) * valid
        onehot = F.one_hot(target.clamp(0, self.num_classes - 1) * (target != self.ignore_index),
                           self.num_classes).permute(0, 3, 1, 2).to(prob.dtype) * valid
        dims = (0, 2, 3)
        inter = (prob * onehot).sum(dims)
        denom = prob.sum(dims) + onehot.sum(dims)
        dice = (2 * inter + self.smooth) / (denom + self.smooth)
        w = self.weight.to(dice.dtype)
        return ((1 - dice) * w).sum() / w.sum()


class FocalLoss(nn.Module):
    """Softmax focal loss (Lin et al. 2017): ``-(1 - p_t)^gamma * log p_t``, mean over valid pixels."""

    def __init__(self, *, gamma: float = 2.0, ignore_index: int = 255, weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma, self.ignore_index = gamma, ignore_index
        self.register_buffer("weight", weight if weight is not None else torch.empty(0))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target != self.ignore_index
        if not valid.any():
            return logits.sum() * 0.0
        logp = F.log_softmax(logits.float(), 1)
        t = target.clamp(0, logits.shape[1] - 1) * valid
        logpt = logp.gather(1, t.unsqueeze(1)).squeeze(1)
        loss = -((1 - logpt.exp()) ** self.gamma) * logpt
        if self.weight.numel():
            loss = loss * self.weight.to(loss.dtype)[t]
        return loss[valid].mean()


class CEDiceLoss(nn.Module):
    def __init__(self, ce: nn.CrossEntropyLoss, dice: DiceLoss, dice_weight: float):
        super().__init__()
        self.ce, self.dice, self.dice_weight = ce, dice, dice_weight
        self.ignore_index = ce.ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.ce(logits, target) + self.dice_weight * self.dice(logits, target)


def build_loss(cfg: LossConfig, num_classes: int) -> nn.Module:
    """The configured loss; ``num_classes`` counts background. Has an ``ignore_index`` attribute."""
    w = _weights(cfg.class_weights, num_classes)
    ce = nn.CrossEntropyLoss(weight=w, ignore_index=cfg.ignore_index)
    if cfg.kind == "ce":
        return ce
    dice = DiceLoss(num_classes, ignore_index=cfg.ignore_index, smooth=cfg.dice_smooth, weight=w)
    if cfg.kind == "dice":
        return dice
    if cfg.kind == "focal":
        return FocalLoss(gamma=cfg.focal_gamma, ignore_index=cfg.ignore_index, weight=w)
    return CEDiceLoss(ce, dice, cfg.dice_weight)
