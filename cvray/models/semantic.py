"""Semantic segmentation behind the detector protocol.

torchvision's segmenters take a stacked batch and return logits; the training engine expects
``model(images, targets) -> loss dict`` and ``model(images) -> [prediction dict]`` like the
detectors. :class:`SemanticSegmenter` adapts one to the other so that one engine, one
checkpoint layout and one evaluation path serve every task. Targets carry ``sem_seg``: an
``HxW`` int64 map of class indices where ``ignore_index`` pixels take no part in loss or metrics.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["SemanticSegmenter"]

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class SemanticSegmenter(nn.Module):
    """Wraps a torchvision segmentation net (``net(x) -> {"out", "aux"?}``).

    Images of a batch may differ in size: they are padded to the largest one (padding is
    ``ignore_index`` in the targets, so it never counts). Unlike the detectors, images are not
    resized here: the training resolution comes from ``augment.scale_range`` / ``crop_size``.
    """

    def __init__(self, net: nn.Module, *, loss: nn.Module | None = None, ignore_index: int = 255,
                 aux_weight: float = 0.5):
        super().__init__()
        self.net = net
        self.loss = loss if loss is not None else nn.CrossEntropyLoss(ignore_index=ignore_index)
        self.ignore_index = getattr(self.loss, "ignore_index", ignore_index)
        self.aux_weight = aux_weight
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def _batch(self, images: list[torch.Tensor]) -> torch.Tensor:
        H = max(im.shape[-2] for im in images)
        W = max(im.shape[-1] for im in images)
        x = images[0].new_zeros((len(images), 3, H, W))
        for i, im in enumerate(images):
            x[i, :, : im.shape[-2], : im.shape[-1]] = im
        return (x - self.mean) / self.std

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        x = self._batch(images)
        out = self.net(x)
        if self.training:
            if targets is None:
                raise ValueError("SemanticSegmenter needs targets with 'sem_seg' in training mode")
            y = x.new_full((len(images), x.shape[-2], x.shape[-1]), self.ignore_index, dtype=torch.long)
            for i, t in enumerate(targets):
                s = t["sem_seg"]
                y[i, : s.shape[-2], : s.shape[-1]] = s
            losses = {"loss_sem_seg": self.loss(out["out"], y)}
            if "aux" in out:
                losses["loss_aux"] = self.aux_weight * self.loss(out["aux"], y)
            return losses
        preds = []
        for i, im in enumerate(images):
            logits = out["out"][i : i + 1, :, : im.shape[-2], : im.shape[-1]]
            preds.append({"sem_seg": logits.argmax(1)[0]})
        return preds
