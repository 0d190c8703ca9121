"""Augmentation policy from :class:`AugmentConfig`; every transform maps ``(image, target)``.

``image`` is a float CHW tensor in [0, 1]; ``target`` may hold ``boxes`` (xyxy float, Nx4),
``labels`` (N), ``masks`` (uint8 NxHxW) and ``sem_seg`` (HxW int64). Geometry is applied to all
of them at once -- boxes analytically, masks and semantic maps with nearest-neighbour
resampling so labels never blend -- and instances that a crop or rescale shrinks below
``min_box_size`` are dropped together with their label and mask. Randomness comes from one
``numpy.random.Generator`` owned by :class:`Compose` (no global RNG), whose state is saved in
checkpoints.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from cvray.train.config import AugmentConfig

__all__ = ["ColorJitter", "Compose", "RandomCrop", "RandomFlip", "RandomPad", "RandomScale", "build_transforms"]

Target = dict[str, torch.Tensor]


def _keep(target: Target, keep: torch.Tensor) -> Target:
    out = dict(target)
    for k in ("boxes", "labels", "masks", "area", "iscrowd"):
        if k in out:
            out[k] = out[k][keep]
    return out


def _boxes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """Tight xyxy boxes (pixel edges) of binary masks; zeros for an empty mask."""
    if masks.numel() == 0:
        return torch.zeros((masks.shape[0], 4))
    rows, cols = masks.any(2), masks.any(1)
    H, W = masks.shape[-2:]
    ar_h, ar_w = torch.arange(H), torch.arange(W)
    y1 = torch.where(rows, ar_h, H).min(1).values
    y2 = torch.where(rows, ar_h, -1).max(1).values + 1
    x1 = torch.where(cols, ar_w, W).min(1).values
    x2 = torch.where(cols, ar_w, -1).max(1).values + 1
    boxes = torch.stack([x1, y1, x2, y2], 1).float()
    return torch.where(rows.any(1)[:, None], boxes, torch.zeros_like(boxes))


class RandomFlip:
    """Horizontal (``axis=-1``) or vertical (``axis=-2``) flip with probability ``p``."""

    def __init__(self, p: float, rng: np.random.Generator, *, horizontal: bool = True):
        self.p, self.rng, self.horizontal = p, rng, horizontal

    def __call__(self, image: torch.Tensor, target: Target):
        if self.p <= 0 or self.rng.random() >= self.p:
            return image, target
        axis = -1 if self.horizontal else -2
        size = image.shape[axis]
        t = dict(target)
        image = image.flip(axis)
        if "boxes" in t and len(t["boxes"]):
            b = t["boxes"].clone()
            i, j = (0, 2) if self.horizontal else (1, 3)
            b[:, i], b[:, j] = size - t["boxes"][:, j], size - t["boxes"][:, i]
            t["boxes"] = b
        for k in ("masks", "sem_seg"):
            if k in t:
                t[k] = t[k].flip(axis)
        return image, t


class RandomScale:
    """Rescale by a factor drawn uniformly from ``[lo, hi]`` (scale jitter)."""

    def __init__(self, lo: float, hi: float, rng: np.random.Generator, *, min_box_size: float = 1.0):
        self.lo, self.hi, self.rng, self.min_box_size = lo, hi, rng, min_box_size

    def __call__(self, image: torch.Tensor, target: Target):
        if self.lo == self.hi == 1.0:
            return image, target
        s = float(self.rng.uniform(self.lo, self.hi))
        H, W = image.shape[-2:]
        nh, nw = max(1, round(H * s)), max(1, round(W * s))
        image = F.interpolate(image[None], size=(nh, nw), mode="bilinear", align_corners=False,
                              antialias=s < 1)[0].clamp_(0, 1)
        t = dict(target)
        if "masks" in t and len(t["masks"]):
            t["masks"] = F.interpolate(t["masks"][None].float(), size=(nh, nw), mode="nearest")[0].to(torch.uint8)
        elif "masks" in t:
            t["masks"] = t["masks"].new_zeros((0, nh, nw))
        if "sem_seg" in t:
            t["sem_seg"] = F.interpolate(t["sem_seg"][None, None].float(), size=(nh, nw),
                                         mode="nearest")[0, 0].long()
        if "boxes" in t and len(t["boxes"]):
            t["boxes"] = t["boxes"] * torch.tensor([nw / W, nh / H, nw / W, nh / H])
            wh = t["boxes"][:, 2:] - t["boxes"][:, :2]
            t = _keep(t, (wh >= self.min_box_size).all(1))
        return image, t


class RandomCrop:
    """Crop a random ``(h, w)`` window (the whole side when the image is smaller).

    With masks, boxes are recomputed from the cropped masks (exact); without, they are clipped.
    """

    def __init__(self, size: tuple[int, int], rng: np.random.Generator, *, p: float = 1.0,
                 min_box_size: float = 1.0):
        self.size, self.rng, self.p, self.min_box_size = size, rng, p, min_box_size

    def __call__(self, image: torch.Tensor, target: Target):
        if self.p <= 0 or self.rng.random() >= self.p:
            return image, target
        H, W = image.shape[-2:]
        ch, cw = min(self.size[0], H), min(self.size[1], W)
        y0 = int(self.rng.integers(0, H - ch + 1))
        x0 = int(self.rng.integers(0, W - cw + 1))
        image = image[:, y0 : y0 + ch, x0 : x0 + cw]
        t = dict(target)
        if "sem_seg" in t:
            t["sem_seg"] = t["sem_seg"][y0 : y0 + ch, x0 : x0 + cw]
        if "masks" in t:
            t["masks"] = t["masks"][:, y0 : y0 + ch, x0 : x0 + cw]
        if "boxes" in t and len(t["boxes"]):
            if "masks" in t:
                t["boxes"] = _boxes_from_masks(t["masks"].bool())
            else:
                b = t["boxes"] - torch.tensor([x0, y0, x0, y0], dtype=t["boxes"].dtype)
                b[:, 0::2] = b[:, 0::2].clamp(0, cw)
                b[:, 1::2] = b[:, 1::2].clamp(0, ch)
                t["boxes"] = b
            wh = t["boxes"][:, 2:] - t["boxes"][:, :2]
            t = _keep(t, (wh >= self.min_box_size).all(1))
        return image, t


class ColorJitter:
    """Brightness / contrast / saturation / hue jitter on the image only (geometry unchanged)."""

    def __init__(self, brightness: float, contrast: float, saturation: float, hue: float,
                 rng: np.random.Generator):
        self.b, self.c, self.s, self.h, self.rng = brightness, contrast, saturation, hue, rng

    def __call__(self, image: torch.Tensor, target: Target):
        u = self.rng.uniform
        if self.b:
            image = TF.adjust_brightness(image, float(u(1 - self.b, 1 + self.b)))
        if self.c:
            image = TF.adjust_contrast(image, float(u(1 - self.c, 1 + self.c)))
        if self.s:
            image = TF.adjust_saturation(image, float(u(1 - self.s, 1 + self.s)))
        if self.h:
            image = TF.adjust_hue(image, float(u(-self.h, self.h)))
        return image, target


class RandomPad:
    """Pad to a square canvas of grey ``value`` (as inference letterboxing pads) with probability ``p``.

    The content lands at a random offset along the padded axis; boxes shift with it, masks are
    padded with 0 and semantic maps with ``ignore_index``. A model trained from scratch with
    GroupNorm normalises over the whole canvas, so it must see such bands in training or
    letterboxed inference shifts its features (measured: train-split AP50 0.97 -> 0.64 with a
    16-row band, see docs/training.md).
    """

    def __init__(self, p: float, value: int, rng: np.random.Generator, *, ignore_index: int = 255):
        self.p, self.value, self.rng, self.ignore_index = p, value, rng, ignore_index

    def __call__(self, image: torch.Tensor, target: Target):
        C, H, W = image.shape
        if H == W or self.p <= 0 or self.rng.random() >= self.p:
            return image, target
        S = max(H, W)
        oy, ox = int(self.rng.integers(0, S - H + 1)), int(self.rng.integers(0, S - W + 1))
        canvas = torch.full((C, S, S), self.value / 255.0, dtype=image.dtype)
        canvas[:, oy:oy + H, ox:ox + W] = image
        t = dict(target)
        if "boxes" in t and len(t["boxes"]):
            t["boxes"] = t["boxes"] + torch.tensor([ox, oy, ox, oy], dtype=t["boxes"].dtype)
        if "masks" in t:
            m = torch.zeros((t["masks"].shape[0], S, S), dtype=t["masks"].dtype)
            m[:, oy:oy + H, ox:ox + W] = t["masks"]
            t["masks"] = m
        if "sem_seg" in t:
            m = torch.full((S, S), self.ignore_index, dtype=t["sem_seg"].dtype)
            m[oy:oy + H, ox:ox + W] = t["sem_seg"]
            t["sem_seg"] = m
        return canvas, t


class Compose:
    """Apply transforms in order; owns the generator so its state can be saved and restored."""

    def __init__(self, transforms: list, rng: np.random.Generator):
        self.transforms, self.rng = transforms, rng

    def __call__(self, image: torch.Tensor, target: Target):
        for t in self.transforms:
            image, target = t(image, target)
        return image, target

    def get_state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


def build_transforms(cfg: AugmentConfig, seed: int | np.random.SeedSequence) -> Compose:
    """The training policy in a fixed order: scale jitter -> crop -> flips -> colour jitter -> pad
    (last, so the band keeps the exact grey inference pads with)."""
    rng = np.random.default_rng(seed)
    ts: list = []
    lo, hi = cfg.scale_range
    if (lo, hi) != (1.0, 1.0):
        ts.append(RandomScale(lo, hi, rng, min_box_size=cfg.min_box_size))
    if cfg.crop_size is not None:
        ts.append(RandomCrop(cfg.crop_size, rng, p=cfg.crop_prob, min_box_size=cfg.min_box_size))
    if cfg.hflip_prob > 0:
        ts.append(RandomFlip(cfg.hflip_prob, rng, horizontal=True))
    if cfg.vflip_prob > 0:
        ts.append(RandomFlip(cfg.vflip_prob, rng, horizontal=False))
    if cfg.brightness or cfg.contrast or cfg.saturation or cfg.hue:
        ts.append(ColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue, rng))
    if cfg.pad_prob > 0:
        ts.append(RandomPad(cfg.pad_prob, cfg.pad_value, rng))
    return Compose(ts, rng)
