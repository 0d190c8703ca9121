"""``export:`` section of ``cvray export onnx``: the opset, the parity images and tolerances, the
INT8 calibration set and the corruption suite FP32 and INT8 are compared on. The model's input
geometry and post-processing are the ``predict`` section's (``predict.geometry``,
``predict.postprocess``), so parity and the suite measure the pipeline ``cvray predict`` runs."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from cvray.config import CvrayModel

__all__ = ["ExportConfig"]


def _names(v):
    return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v


class ExportConfig(CvrayModel):
    opset: int = Field(17, ge=17, le=23, description="ONNX opset of the legacy exporter")
    parity_images: int = Field(8, ge=1, description="images of the parity check and the latency (the input's first N)")
    warmup: int = Field(2, ge=0, description="runs per backend before latency is timed")
    threads: int = Field(1, ge=1, description="torch and onnxruntime intra-op threads while timing")
    # FP32 parity tolerances (docs/export.md "Tolerances": measured deltas are ~1e-5 px / 1e-6)
    tol_match_rate: float = Field(1.0, ge=0, le=1, description="FP32: detection-level match rate at least")
    tol_box_px: float = Field(1e-2, gt=0, description="FP32: max |box coordinate delta| in input pixels")
    tol_score: float = Field(1e-4, gt=0, description="FP32: max |score delta|")
    tol_mask_iou: float = Field(0.99, ge=0, le=1, description="FP32: min IoU of matched masks (at 0.5)")
    # INT8: held on the mean over matched pairs (a sanity bound: a broken quantization fails it; the
    # suite's deltas are the accuracy test); measured 0.88-0.92 / ~1 px / ~0.02 / 0.93 (docs/export.md)
    int8_tol_match_rate: float = Field(0.8, ge=0, le=1, description="INT8: match rate at least")
    int8_tol_box_px: float = Field(2.0, gt=0, description="INT8: mean |box delta| of matched pairs at most (px)")
    int8_tol_score: float = Field(0.05, gt=0, description="INT8: mean |score delta| of matched pairs at most")
    int8_tol_mask_iou: float = Field(0.85, ge=0, le=1, description="INT8: mean IoU of matched masks at least")
    # INT8 post-training static quantization
    calibration_images: int = Field(16, ge=1, description="clean images of the calibration set (the data's first N)")
    calibration_corruptions: list[str] = Field(
        default_factory=lambda: ["gaussian_noise", "motion_blur", "fog", "contrast", "jpeg_compression"],
        description="edge conditions added to the calibration set (each image under each, cvray robustness names)")
    calibration_severities: list[int] = Field(default_factory=lambda: [2, 4])
    calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    per_channel: bool = True
    int8_exclude: list[str] = Field(default_factory=list, description="node-name fragments kept float, added to "
                                    "the prediction layers cvray keeps float (cvray/export/quantize.py)")
    # FP32 vs INT8 on the corruption suite (--suite)
    corruptions: list[str] = Field(default_factory=lambda: ["benchmark"],
                                   description="benchmark | holdout | all | extras | corruption names")
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    max_images: int | None = Field(None, ge=1, description="suite: the split's first N images (by id)")
    seed: int | None = Field(None, description="corruption seed (default: the config's seed)")
    batch_size: int = Field(4, ge=1)
    max_frames: int | None = Field(None, ge=1, description="MOT suite: the first N frames of each sequence")

    @field_validator("calibration_corruptions", "corruptions", "int8_exclude", mode="before")
    @classmethod
    def _split(cls, v):
        return _names(v)

    @field_validator("calibration_severities", "severities", mode="before")
    @classmethod
    def _range(cls, v):
        from cvray.robustness.config import parse_severities

        return parse_severities(v)

    @field_validator("calibration_severities", "severities")
    @classmethod
    def _check(cls, v):
        from cvray.robustness.config import check_severities

        return check_severities(v)
