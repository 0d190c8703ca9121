"""``validation`` section of the experiment config: every threshold the QA rules use, named
(override with ``validation.max_errors=3`` etc.)."""
from __future__ import annotations

from pydantic import Field

from cvray.config import CvrayModel

__all__ = ["ValidateConfig"]


class ValidateConfig(CvrayModel):
    """Thresholds of the dataset-QA rules. Rebuilt inside Ray workers, so it must stay cheap to
    import (cvray.config composes the stage sections lazily; nothing heavy comes with it)."""

    # -- exit policy
    max_errors: int = Field(0, ge=0, description="exit 1 when more than this many error rows")
    # -- images
    supported_formats: tuple[str, ...] = Field(
        ("JPEG", "PNG", "BMP", "WEBP", "TIFF"), description="PIL format names accepted")
    # -- boxes
    box_tolerance_px: float = Field(1.0, ge=0, description="how far a box may run past the image")
    tiny_area: float = Field(16.0, ge=0, description="boxes smaller than this (px^2) are 'tiny'")
    # -- masks
    mask_fill_min: float = Field(0.02, ge=0, le=1, description="mask area / box area below this is suspicious")
    mask_fill_max: float = Field(1.05, ge=1, description="mask area / box area above this is suspicious")
    area_rel_tolerance: float = Field(0.15, ge=0, description="|area - mask area| / mask area allowed")
    area_abs_tolerance: float = Field(4.0, ge=0, description="absolute slack (px) of the area check")
    # -- classes
    min_class_samples: int = Field(5, ge=0, description="classes with fewer instances are flagged")
    imbalance_ratio: float = Field(50.0, ge=1, description="max/min class count above this is flagged")
    # -- leakage
    phash_threshold: int = Field(4, ge=0, le=32, description="Hamming distance <= this is a near duplicate")
    group_keys: tuple[str, ...] = Field(
        ("scene_id", "video_id", "sequence", "source", "camera_id"),
        description="image-record fields that name a group (video, scene, camera ...)")
    # -- baselines
    baseline_ap_max: float = Field(0.15, ge=0, le=1, description="baseline AP above this is suspicious")
