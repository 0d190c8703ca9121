"""Typed config of ``cvray predict``: the post-processing policy, geometry and the pipeline."""
from __future__ import annotations

from pydantic import Field

from cvray.config import CvrayModel
from cvray.drift.config import DriftConfig
from cvray.models.config import ModelConfig
from cvray.predict.options import GeometryConfig, PostprocessConfig

__all__ = ["PostprocessConfig", "GeometryConfig", "PredictConfig"]


class PredictConfig(CvrayModel):
    """Pipeline settings and the network to run (``predict.model``, used by ``cvray predict`` and
    ``cvray track --video``; ``--model`` fills arch/weights, a train run brings its own)."""

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
    calibrator: str | None = Field(
        None, description="a calibrator.json or a cvray calibrate run folder/URI: the scores written are "
        "calibrated (after the post-processing policy, which still decides on the raw scores; boxes, labels "
        "and order unchanged; the run's summary says so)")
    policy: str | None = Field(
        None, description="a decision policy (policy.json or the cvray calibrate run that wrote one): every "
        "detection is tagged act / observe / abstain by its class's thresholds (the `decision` column)")
    drift: DriftConfig = Field(default_factory=DriftConfig)
    postprocess: PostprocessConfig = Field(default_factory=PostprocessConfig)
    geometry: GeometryConfig = Field(default_factory=GeometryConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
