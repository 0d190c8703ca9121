"""``robustness:`` section of ``cvray robustness``: which corruptions, severities and images, and
how the grid of cells is spread over Ray workers. The model, its input geometry and the
post-processing come from the ``predict`` section (``predict.geometry``, ``predict.postprocess``),
so a suite measures the very pipeline ``cvray predict`` runs."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from cvray.config import CvrayModel

__all__ = ["RobustnessConfig", "check_severities", "parse_severities"]


def parse_severities(v):
    """``"1-5"``, ``"1,3,5"``, ``3`` or a list (the severities flag of robustness and calibrate)."""
    if isinstance(v, int):
        return [v]
    if isinstance(v, str):
        out = []
        for part in v.split(","):
            lo, _, hi = part.strip().partition("-")
            out.extend(range(int(lo), int(hi or lo) + 1))
        return out
    return v


def check_severities(v: list[int]) -> list[int]:
    """Sorted, unique, each in 1..5."""
    bad = [s for s in v if not 1 <= s <= 5]
    if bad or not v:
        raise ValueError(f"severities are 1..5 (got {v})")
    return sorted(set(v))


class RobustnessConfig(CvrayModel):
    corruptions: list[str] = Field(default_factory=lambda: ["benchmark"],
                                   description="benchmark | holdout | all | extras | corruption names")
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    seed: int | None = Field(None, description="corruption seed (default: the config's seed)")
    max_images: int | None = Field(None, ge=1, description="the first N images of the split (sorted by id)")
    batch_size: int = Field(4, ge=1)
    workers: int | None = Field(None, ge=1, description="model actors (default: as many as fit)")
    cpus_per_worker: float = Field(1.0, gt=0)
    gpus_per_worker: float | None = Field(None, ge=0, description="default: 1 when the cluster has GPUs; "
                                          "a fraction packs several actors on a GPU")
    torch_threads: int | None = Field(1, ge=1)
    max_retries: int = Field(3, ge=0, description="times a cell is retried after its worker died")
    # --data MOT_DIR: tracking under corruption (the tracker from the config's track: section)
    compression: str | None = Field(None, description="MOT data: compression tiers, e.g. 'h264:18,23,28,35' "
                                    "or 'h264:23;h265:28' (each codec's CRF-0 baseline is added)")
    compression_preset: str = Field("medium", description="x264/x265 preset of the compression tiers")
    detectors: list[Literal["model", "gt"]] = Field(
        default_factory=lambda: ["model", "gt"], description="MOT data: who detects -- the model, and/or "
        "the ground-truth boxes (the tracker alone, reading the corrupted pixels)")
    max_frames: int | None = Field(None, ge=1, description="MOT data: the first N frames of each sequence")

    @field_validator("detectors", mode="before")
    @classmethod
    def _detectors(cls, v):
        return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v

    @field_validator("compression")
    @classmethod
    def _tiers(cls, v):
        if v is not None:
            from cvray.robustness.compression import parse_tiers

            parse_tiers(v)  # a bad spec fails here, naming the bad part
        return v

    @field_validator("corruptions", mode="before")
    @classmethod
    def _split(cls, v):
        return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v

    @field_validator("severities", mode="before")
    @classmethod
    def _range(cls, v):
        return parse_severities(v)

    @field_validator("severities")
    @classmethod
    def _check(cls, v):
        return check_severities(v)
