"""``train:`` section of the experiment config (typed, immutable, unknown keys rejected).

Every threshold the training code uses lives here with a name: nothing is a bare number in
the loop. Sub-sections: ``model`` (see :class:`cvray.models.ModelConfig`), ``augment``,
``optim`` (optimizer + schedule), ``loss`` (semantic segmentation only).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cvray.config import CvrayModel
from cvray.models.config import ModelConfig

__all__ = ["AugmentConfig", "DiagnosticsConfig", "LossConfig", "OptimConfig", "TrainConfig"]


class AugmentConfig(CvrayModel):
    """Training augmentation policy; every transform moves image, boxes and masks together."""

    hflip_prob: float = Field(0.5, ge=0, le=1)
    vflip_prob: float = Field(0.0, ge=0, le=1)
    scale_range: tuple[float, float] = Field((1.0, 1.0), description="random rescale factor range")
    brightness: float = Field(0.0, ge=0, description="colour jitter strengths (0 = off)")
    contrast: float = Field(0.0, ge=0)
    saturation: float = Field(0.0, ge=0)
    hue: float = Field(0.0, ge=0, le=0.5)
    crop_size: tuple[int, int] | None = Field(None, description="random crop (h, w) in pixels")
    crop_prob: float = Field(1.0, ge=0, le=1)
    pad_prob: float = Field(0.0, ge=0, le=1, description="pad non-square images to a square grey "
                                                        "canvas (as letterboxed inference does)")
    pad_value: int = Field(114, ge=0, le=255, description="grey level of that canvas (predict's pad_value)")
    min_box_size: float = Field(1.0, ge=0, description="boxes narrower/shorter than this after "
                                                       "crop or rescale are dropped (pixels)")

    @model_validator(mode="after")
    def _check(self) -> "AugmentConfig":
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"augment.scale_range must satisfy 0 < lo <= hi, got {self.scale_range}")
        return self


class OptimConfig(CvrayModel):
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.02, gt=0, description="learning rate for the global batch")
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    schedule: Literal["step", "cosine", "constant"] = "step"
    steps: tuple[int, ...] = Field((), description="iterations where step schedule multiplies by gamma")
    gamma: float = Field(0.1, gt=0, le=1)
    min_lr_factor: float = Field(0.0, ge=0, le=1, description="cosine floor as a fraction of lr")
    warmup_iters: int = Field(0, ge=0)
    warmup_factor: float = Field(0.001, gt=0, le=1, description="lr fraction at iteration 0")
    clip_grad_norm: float | None = Field(None, gt=0, description="max global grad norm (None = off)")
    max_skipped_steps: int = Field(3, ge=0, description="consecutive non-finite (loss or grad norm) steps "
                                   "skipped before the run stops; 0 = stop at the first")


class LossConfig(CvrayModel):
    """Semantic-segmentation loss (detectors carry their own losses)."""

    kind: Literal["ce", "dice", "focal", "ce_dice"] = "ce"
    class_weights: tuple[float, ...] | None = Field(None, description="one weight per class incl. background")
    ignore_index: int = 255
    focal_gamma: float = Field(2.0, ge=0)
    dice_weight: float = Field(1.0, ge=0, description="weight of the Dice term in ce_dice")
    dice_smooth: float = Field(1.0, ge=0)


class DiagnosticsConfig(CvrayModel):
    """When a run counts as not learning (warning rows in its issues table, see
    :mod:`cvray.train.diagnostics`)."""

    min_loss_drop: float = Field(0.2, ge=0, lt=1, description="the loss must fall by this fraction "
                                                               "between the first and last window after warmup")
    window: int = Field(10, ge=1, description="steps averaged at each end of the loss curve")
    anchor_iou: float = Field(0.5, gt=0, le=1, description="a box is covered when some anchor shape "
                                                          "overlaps it this much")
    max_anchor_mismatch: float = Field(0.2, ge=0, le=1, description="warn above this fraction of "
                                                                    "uncovered training boxes")


class TrainConfig(CvrayModel):
    model: ModelConfig = Field(default_factory=ModelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    diagnostics: DiagnosticsConfig = Field(default_factory=DiagnosticsConfig)

    max_iter: int = Field(1000, ge=1, description="optimizer steps (each = grad_accum_steps batches)")
    batch_size: int = Field(2, ge=1, description="images per worker per micro-batch")
    grad_accum_steps: int = Field(1, ge=1)
    amp: bool = Field(True, description="mixed precision when training on GPU (ignored on CPU)")

    eval_period: int = Field(500, ge=0, description="iterations between evaluations (0 = only at end)")
    checkpoint_period: int = Field(500, ge=1)
    log_period: int = Field(20, ge=1)
    best_metric: str | None = Field(None, description="metric for best.pt: segm_AP / bbox_AP / mIoU "
                                                      "(default by task)")
    max_val_images: int | None = Field(None, ge=1)
    eval_score_thresh: float = Field(0.0, ge=0, le=1, description="drop predictions below this score")
    tensorboard: bool = True

    num_workers: int = Field(2, ge=1, description="Ray Train workers (0 workers = not allowed)")
    use_gpu: bool | None = Field(None, description="None = use GPUs when the cluster has them")
    cpus_per_worker: float = Field(1.0, gt=0)
    max_failures: int = Field(2, ge=-1, description="worker failures to recover from (-1 = always)")
    torch_threads: int | None = Field(None, ge=1, description="intra-op threads per worker")

    resume: bool = Field(False, description="continue the run train.run_id (or the latest train run)")
    run_id: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    shuffle: bool = True

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        bad = [s for s in self.optim.steps if not 0 < s <= self.max_iter]
        if bad:
            raise ValueError(f"optim.steps {bad} lie outside (0, max_iter={self.max_iter}]")
        return self

    @property
    def metric_name(self) -> str:
        if self.best_metric:
            return self.best_metric
        return {"instance": "segm_AP", "detection": "bbox_AP", "semantic": "mIoU"}[self.model.task]
