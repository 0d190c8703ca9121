"""Typed config of evaluation and error analysis (``eval:`` section)."""
from __future__ import annotations

from pydantic import Field

from cvray.config import CvrayModel

__all__ = ["EvalConfig", "ErrorConfig", "InstanceErrorConfig", "CurveConfig"]


class ErrorConfig(CvrayModel):
    """TIDE-style error buckets (Bolya et al., ECCV 2020): thresholds as in the paper."""

    fg_iou: float = Field(0.5, gt=0, le=1, description="IoU at which a detection is a true positive")
    bg_iou: float = Field(0.1, ge=0, lt=1, description="below this IoU with every GT: background error")
    max_dets: int = Field(100, ge=1, description="detections per image and class (COCO maxDets)")
    top_k: int = Field(8, ge=0, description="failure examples rendered per error type")


class CurveConfig(CvrayModel):
    iou: float = Field(0.5, gt=0, le=1, description="IoU for precision/recall vs confidence and confusion")
    confusion_score: float = Field(0.25, ge=0, le=1, description="detections below this are ignored in the confusion matrix")
    thresholds: int = Field(101, ge=2, description="confidence grid points for the P/R-vs-confidence curve")


class InstanceErrorConfig(CvrayModel):
    """Thresholds of :mod:`cvray.evaluate.instance_errors` (built directly by its callers; not an
    ``eval:`` key until a command runs instance-error analysis)."""

    match_iou: float = Field(0.5, gt=0, le=1, description="mask IoU for a correct instance")
    cover: float = Field(0.5, gt=0, le=1, description="fraction of a GT inside one prediction to count it as covered")


class EvalConfig(CvrayModel):
    """The ``eval:`` section: what ``cvray eval`` reads (error buckets, curves)."""

    errors: ErrorConfig = Field(default_factory=ErrorConfig)
    curves: CurveConfig = Field(default_factory=CurveConfig)
