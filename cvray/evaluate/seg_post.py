"""Post-processing of semantic predictions, step by step, each step configurable and recorded.

Steps, in this order (each off by default except argmax and components):

1. argmax      — (C, H, W) scores → label map; the winning score is kept as the confidence map
2. morphology  — per foreground class, binary open and/or close with a small kernel (<= 7 px);
                 opening returns removed pixels to background, closing only claims background
3. small regions — connected regions of a foreground class smaller than ``min_region_area``
                 become background
4. hole filling — background holes fully enclosed by one class, at most ``max_hole_area`` pixels,
                 take that class
5. components  — connected components of each foreground class become instances

Every step appends ``{"step", "params", "pixels_changed"}`` to the record returned with the
result, so the QA export says exactly what was done to each mask.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from cvray.config import CvrayModel

__all__ = ["SegPostConfig", "SegInstance", "postprocess_semantic", "connected_instances"]


class SegPostConfig(CvrayModel):
    background_id: int = Field(0, ge=0)
    morphology: Literal["none", "open", "close", "open_close"] = "none"
    kernel_size: int = Field(3, ge=1, le=7, description="odd kernel size for opening/closing")
    kernel_shape: Literal["rect", "ellipse", "cross"] = "ellipse"
    min_region_area: int = Field(0, ge=0, description="0 = keep every region")
    max_hole_area: int = Field(0, ge=0, description="0 = fill no holes")
    connectivity: Literal[4, 8] = 8
    min_instance_area: int = Field(1, ge=1)


@dataclass
class SegInstance:
    class_id: int
    mask: np.ndarray
    area: int
    bbox: tuple[int, int, int, int]       # x, y, w, h
    confidence: float | None


def _kernel(cfg: SegPostConfig) -> np.ndarray:
    if cfg.kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {cfg.kernel_size}")
    shape = {"rect": cv2.MORPH_RECT, "ellipse": cv2.MORPH_ELLIPSE, "cross": cv2.MORPH_CROSS}[cfg.kernel_shape]
    return cv2.getStructuringElement(shape, (cfg.kernel_size, cfg.kernel_size))


def _classes(labels: np.ndarray, bg: int) -> list[int]:
    return [int(c) for c in np.unique(labels) if c != bg]


def _morphology(labels: np.ndarray, cfg: SegPostConfig) -> np.ndarray:
    out = labels.copy()
    k = _kernel(cfg)
    bg = cfg.background_id
    for c in _classes(labels, bg):
        m = (out == c).astype(np.uint8)
        if cfg.morphology in ("open", "open_close"):
            opened = cv2.morphologyEx(m, cv2.MORPH_OPEN, k, borderType=cv2.BORDER_REPLICATE)
            out[(m == 1) & (opened == 0)] = bg
            m = opened
        if cfg.morphology in ("close", "open_close"):
            closed = cv2.morphologyEx(m, cv2.MORPH_CLOSE, k, borderType=cv2.BORDER_REPLICATE)
            out[(closed == 1) & (out == bg)] = c
    return out


def _remove_small(labels: np.ndarray, cfg: SegPostConfig) -> np.ndarray:
    out = labels.copy()
    for c in _classes(labels, cfg.background_id):
        n, comp, stats, _ = cv2.connectedComponentsWithStats((labels == c).astype(np.uint8), connectivity=cfg.connectivity)
        small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < cfg.min_region_area) + 1
        if len(small):
            out[np.isin(comp, small)] = cfg.background_id
    return out


def _fill_holes(labels: np.ndarray, cfg: SegPostConfig) -> np.ndarray:
    out = labels.copy()
    bg = cfg.background_id
    h, w = labels.shape
    # holes are background components not touching the image edge, surrounded by one class
    hole_conn = 4 if cfg.connectivity == 8 else 8
    n, comp, stats, _ = cv2.connectedComponentsWithStats((labels == bg).astype(np.uint8), connectivity=hole_conn)
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if area > cfg.max_hole_area or x == 0 or y == 0 or x + bw == w or y + bh == h:
            continue
        hole = comp == i
        ring = cv2.dilate(hole.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))).astype(bool) & ~hole
        around = np.unique(labels[ring])
        if len(around) == 1 and around[0] != bg:
            out[hole] = around[0]
    return out


def connected_instances(labels: np.ndarray, cfg: SegPostConfig = SegPostConfig(),
                        confidence: np.ndarray | None = None) -> list[SegInstance]:
    """Connected components of each foreground class → instances (class id order, then raster)."""
    out = []
    for c in _classes(labels, cfg.background_id):
        n, comp, stats, _ = cv2.connectedComponentsWithStats((labels == c).astype(np.uint8), connectivity=cfg.connectivity)
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area < cfg.min_instance_area:
                continue
            m = comp == i
            conf = float(confidence[m].mean()) if confidence is not None else None
            out.append(SegInstance(c, m, area, (x, y, w, h), conf))
    return out


def postprocess_semantic(pred: np.ndarray, cfg: SegPostConfig = SegPostConfig()
                         ) -> tuple[np.ndarray, np.ndarray | None, list[SegInstance], list[dict]]:
    """Run the configured steps on (C, H, W) scores or an (H, W) label map.

    Returns ``(labels, confidence or None, instances, steps)``.
    """
    steps: list[dict] = []
    pred = np.asarray(pred)
    confidence = None
    if pred.ndim == 3:
        labels = pred.argmax(0).astype(np.int32)
        confidence = pred.max(0).astype(np.float32)
        steps.append({"step": "argmax", "params": {"classes": int(pred.shape[0])}, "pixels_changed": 0})
    elif pred.ndim == 2:
        labels = pred.astype(np.int32)
    else:
        raise ValueError(f"expected (C, H, W) scores or an (H, W) label map, got shape {pred.shape}")

    def record(name, params, before, after):
        steps.append({"step": name, "params": params, "pixels_changed": int((before != after).sum())})
        return after

    if cfg.morphology != "none":
        labels = record("morphology", {"op": cfg.morphology, "kernel_size": cfg.kernel_size,
                                       "kernel_shape": cfg.kernel_shape}, labels, _morphology(labels, cfg))
    if cfg.min_region_area > 0:
        labels = record("remove_small_regions", {"min_region_area": cfg.min_region_area,
                                                 "connectivity": cfg.connectivity}, labels, _remove_small(labels, cfg))
    if cfg.max_hole_area > 0:
        labels = record("fill_holes", {"max_hole_area": cfg.max_hole_area}, labels, _fill_holes(labels, cfg))
    instances = connected_instances(labels, cfg, confidence)
    steps.append({"step": "components", "params": {"connectivity": cfg.connectivity,
                                                   "min_instance_area": cfg.min_instance_area},
                  "pixels_changed": 0, "instances": len(instances)})
    return labels, confidence, instances, steps
