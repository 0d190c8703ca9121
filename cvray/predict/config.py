"""Typed config of ``cvray predict``: the post-processing policy, geometry and the pipeline."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from cvray.config import CvrayModel

__all__ = ["PostprocessConfig", "GeometryConfig", "PredictConfig"]


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


class PredictConfig(CvrayModel):
    """Pipeline settings; which network runs comes from the ``model:`` section (cvray.models)."""

    batch_size: int = Field(4, ge=1)
    chunk_size: int = Field(32, ge=1, description="images per predictions Parquet part")
    num_actors: int | None = Field(
        None, ge=1, description="model replicas in the actor pool (default: one per GPU when the cluster "
        "has GPUs, else one per num_cpus_per_actor CPUs -- on CPUs several single-threaded replicas "
        "outrun one multi-threaded one, docs/benchmarks.md)")
    num_cpus_per_actor: float = Field(1.0, gt=0)
    decode_cpus: float = Field(0.0, ge=0, description="Ray CPUs reserved per read/decode task (0: "
                               "decoding runs beside model actors that reserve every CPU, instead of "
                               "waiting for one; decode_concurrency bounds it)")
    decode_concurrency: int | None = Field(None, ge=1, description="read/decode tasks at once "
                                           "(default: the cluster's CPU count)")
    num_gpus_per_actor: float | None = Field(None, ge=0, description="default: 1 when GPUs exist")
    torch_threads: int | None = Field(
        None, ge=1, description="intra-op threads per model replica (default: Ray's OMP_NUM_THREADS = its CPUs)")
    video_stride: int = Field(1, ge=1, description="keep every n-th video frame")
    postprocess: PostprocessConfig = Field(default_factory=PostprocessConfig)
    geometry: GeometryConfig = Field(default_factory=GeometryConfig)
