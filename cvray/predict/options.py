"""Typed options of the inference pipeline that its torch-free stages need (decode/letterbox
workers import this, never :mod:`cvray.predict.config`, which pulls in the model config and so
torch)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from cvray.config import CvrayModel

__all__ = ["GeometryConfig", "PostprocessConfig"]


class PostprocessConfig(CvrayModel):
    """Post-processing policy; stored with every predictions run so numbers can be traced."""

    score_threshold: float = Field(0.05, ge=0.0, le=1.0, description="drop detections scoring below")
    nms: Literal["classwise", "agnostic", "none"] = Field(
        "classwise", description="suppress overlaps within a class, across classes, or not at all")
    nms_iou: float = Field(0.5, gt=0.0, le=1.0, description="IoU above which a box is suppressed")
    soft_nms: Literal["off", "linear", "gaussian"] = Field(
        "off", description="decay overlapping scores instead of removing boxes (Bodla et al. 2017)")
    soft_nms_sigma: float = Field(0.5, gt=0.0, description="Gaussian Soft-NMS sigma")
    soft_nms_min_score: float = Field(0.001, ge=0.0, description="drop boxes decayed below this")
    max_detections: int = Field(100, ge=1, description="keep at most this many per image")
    mask_threshold: float = Field(0.5, gt=0.0, lt=1.0, description="binarise soft masks at this")


class GeometryConfig(CvrayModel):
    """How images are brought to the model's input size (boxes and masks are mapped back)."""

    mode: Literal["letterbox", "resize", "none"] = "letterbox"
    size: tuple[int, int] = Field((512, 512), description="model input (height, width)")
    pad_value: int = Field(114, ge=0, le=255)
