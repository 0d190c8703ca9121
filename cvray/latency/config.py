"""``latency:`` section of ``cvray latency``: the configurations to time, the budget, the scenes.
The model's post-processing policy is the ``predict`` section's (``predict.postprocess``), the
tracker the ``track`` section's, so the sheet times the pipeline ``cvray predict`` / ``cvray
track`` run."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from cvray.config import CvrayModel

__all__ = ["LatencyConfig"]


def _ints(v):
    if isinstance(v, int):
        return [v]
    if isinstance(v, str):
        return [int(s) for s in v.split(",") if s.strip()]
    return v


class LatencyConfig(CvrayModel):
    input_sizes: list[int] | None = Field(None, description="letterbox sides to time (default: the model's min_size)")
    batch_sizes: list[int] = Field(default_factory=lambda: [1])
    threads: list[int] = Field(default_factory=lambda: [1], description="torch intra-op threads")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when the worker has a GPU")
    warmup: int = Field(3, ge=0, description="images run first and timed apart (never in the percentiles)")
    max_images: int | None = Field(32, ge=1, description="images timed per configuration (the input's first N)")
    repeat: int = Field(1, ge=1, description="passes over the images")
    budget_ms: float = Field(100.0, gt=0, description="per-image budget, held against the total's p95")
    worst_case: int = Field(4, ge=0, description="images per worst-case scene (most objects, largest frames); 0: none")
    track: bool = Field(True, description="time one tracker update per frame (the track: section's tracker)")
    gpus: float | None = Field(None, ge=0, description="GPUs of the measuring worker (default: 1 when the cluster has one)")
    cpus: float | None = Field(None, gt=0, description="CPUs of the measuring worker (default: the most threads)")

    @field_validator("input_sizes", "batch_sizes", "threads", mode="before")
    @classmethod
    def _split(cls, v):
        return _ints(v) if v is not None else v

    @field_validator("batch_sizes", "threads")
    @classmethod
    def _positive(cls, v):
        if not v or any(x < 1 for x in v):
            raise ValueError(f"need one or more values >= 1 (got {v})")
        return v
