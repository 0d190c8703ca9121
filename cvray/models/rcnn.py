"""Second-stage training proposals for R-CNN models trained from scratch: jittered ground truth.

torchvision's ``RoIHeads`` adds each ground-truth box to the RPN's proposals before sampling the
box head's training RoIs (``add_gt_proposals``). From random initialisation the RPN's proposals
are poor for hundreds of steps, so almost the only positives the box and mask heads see are the
exact ground-truth boxes: one positive per object, and a box regressor that only ever learns the
zero offset. ``model.roi_gt_jitter: N`` adds N randomly shifted and rescaled copies of every
ground-truth box as well (centre moved by up to ``scale`` of the box side, each side scaled by up
to ``exp(+-2 * scale)``), so the heads get several positives per object, with real regression
targets, from the first step -- the role good RPN proposals play later. Copies whose IoU falls
under the head's foreground threshold become hard negatives. Training only: inference never calls
``add_gt_proposals``. The module keeps torchvision's parameters (state dicts are unchanged).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models.detection.roi_heads import RoIHeads

__all__ = ["JitteredGtRoIHeads", "jitter_boxes", "use_jittered_gt"]


def jitter_boxes(boxes: Tensor, copies: int, scale: float, generator: torch.Generator | None = None) -> Tensor:
    """``copies`` jittered versions of each ``(x1, y1, x2, y2)`` box, shape ``(copies * N, 4)``."""
    if copies <= 0 or boxes.numel() == 0:
        return boxes.new_zeros((0, 4))
    b = boxes.repeat(copies, 1)
    wh = (b[:, 2:] - b[:, :2]).clamp(min=1.0)
    centre = (b[:, 2:] + b[:, :2]) / 2

    def uniform(shape: torch.Size) -> Tensor:
        return torch.rand(shape, generator=generator, dtype=b.dtype, device=b.device) * 2 - 1

    centre = centre + uniform(wh.shape) * scale * wh
    wh = wh * torch.exp(uniform(wh.shape) * 2 * scale)
    return torch.cat([centre - wh / 2, centre + wh / 2], dim=1)


class JitteredGtRoIHeads(RoIHeads):
    """``RoIHeads`` whose training proposals also hold ``gt_jitter`` jittered copies of each GT box."""

    gt_jitter: int = 0
    gt_jitter_scale: float = 0.1

    def add_gt_proposals(self, proposals: list[Tensor], gt_boxes: list[Tensor]) -> list[Tensor]:
        return [torch.cat((p, g, jitter_boxes(g, self.gt_jitter, self.gt_jitter_scale)))
                for p, g in zip(proposals, gt_boxes)]


def use_jittered_gt(model: nn.Module, copies: int, scale: float = 0.1) -> nn.Module:
    """Give a torchvision R-CNN's ``roi_heads`` jittered-GT training proposals (in place)."""
    heads = model.roi_heads
    if not isinstance(heads, RoIHeads):
        raise TypeError(f"{type(model).__name__} has no torchvision RoIHeads")
    heads.__class__ = JitteredGtRoIHeads  # same module, same parameters; one method differs
    heads.gt_jitter, heads.gt_jitter_scale = int(copies), float(scale)
    return model
