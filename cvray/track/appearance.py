"""Appearance embeddings: the extractor interface, a training-free colour histogram, loading.

An extractor maps ``(image RGB uint8 HxWx3, boxes xyxy (N, 4)) -> (N, D) float32`` with unit-norm
rows, so the tracker compares them by cosine distance. Two are built in:

* :class:`ColorHistogramExtractor` -- no training: HSV histograms of horizontal stripes of the box
  (a coarse spatial layout: head / torso / legs for people), Hellinger-normalised.
* :class:`cvray.track.embedding.CNNExtractor` -- a small CNN cvray trains on crops of tracked
  ground truth (:func:`cvray.track.embedding.train_embedding_net`) or loads from user weights.
"""
from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from cvray.track.config import AppearanceConfig

__all__ = ["ColorHistogramExtractor", "EmbeddingExtractor", "build_extractor", "crop_boxes"]


class EmbeddingExtractor(Protocol):
    dim: int

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray: ...


def crop_boxes(image: np.ndarray, boxes: np.ndarray, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Crops of ``boxes`` (clipped to the image; at least 1 px), resized to ``size=(h, w)`` if given."""
    h, w = image.shape[:2]
    out = []
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        xa, ya = int(np.clip(np.floor(x0), 0, w - 1)), int(np.clip(np.floor(y0), 0, h - 1))
        xb, yb = int(np.clip(np.ceil(x1), xa + 1, w)), int(np.clip(np.ceil(y1), ya + 1, h))
        crop = image[ya:yb, xa:xb]
        if size is not None:
            crop = cv2.resize(crop, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        out.append(crop)
    return out


class ColorHistogramExtractor:
    """Spatial colour histogram: ``stripes`` horizontal bands x (H, S, V) histograms of ``bins``."""

    def __init__(self, bins: int = 8, stripes: int = 3) -> None:
        self.bins, self.stripes = int(bins), int(stripes)
        self.dim = 3 * self.bins * self.stripes

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        feats = np.zeros((len(boxes), self.dim), np.float32)
        ranges = ((0, 180), (0, 256), (0, 256))  # OpenCV 8-bit HSV
        for i, crop in enumerate(crop_boxes(image, boxes)):
            hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV)
            bands = np.array_split(hsv, self.stripes, axis=0)
            parts = []
            for band in bands:
                if band.size == 0:
                    parts.append(np.zeros(3 * self.bins, np.float32))
                    continue
                for c, (lo, hi) in enumerate(ranges):
                    hist = cv2.calcHist([band], [c], None, [self.bins], [lo, hi]).ravel()
                    parts.append(hist / max(hist.sum(), 1.0))
            v = np.sqrt(np.concatenate(parts))            # Hellinger: sqrt of L1-normalised bins
            feats[i] = v / (np.linalg.norm(v) + 1e-12)
        return feats


def build_extractor(cfg: AppearanceConfig) -> EmbeddingExtractor | None:
    """The extractor named by ``cfg.extractor`` (``cnn`` needs ``cfg.weights``)."""
    if cfg.extractor == "none":
        return None
    if cfg.extractor == "histogram":
        return ColorHistogramExtractor(cfg.hist_bins, cfg.hist_stripes)
    if not cfg.weights:
        raise ValueError("track.appearance.extractor=cnn needs track.appearance.weights (a .pt path); "
                         "train one with cvray.track.embedding.train_embedding_net")
    from cvray.track.embedding import load_cnn_extractor

    return load_cnn_extractor(cfg.weights, cfg)
