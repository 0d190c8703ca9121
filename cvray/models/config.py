"""Typed model section of the experiment config (``model:`` in YAML).

One config drives every backend: ``backend`` picks the implementation, ``arch`` and ``backbone``
pick the network, ``num_classes`` counts foreground categories (the builders add the background
slot themselves), and ``min_size`` / ``max_size`` set the input resolution the detector resizes to.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cvray.config import CvrayModel

DETECTION_ARCHS = ("fasterrcnn", "maskrcnn", "retinanet", "fcos")
SEMANTIC_ARCHS = ("deeplabv3", "fcn", "lraspp")

Arch = Literal["fasterrcnn", "maskrcnn", "retinanet", "fcos", "deeplabv3", "fcn", "lraspp"]
Backbone = Literal["resnet50_fpn", "mobilenet_v3_large_fpn", "small_resnet_fpn", "resnet50", "resnet101", "mobilenet_v3_large"]


class ModelConfig(CvrayModel):
    """Which network to build and from which weights.

    ``weights`` is a full-model state dict (local path, ``s3://`` URI or ``http(s)://`` URL) loaded
    with ``weights_only=True``; ``weights_backbone`` the same for the backbone only. Both default to
    ``None`` (random init): nothing is ever downloaded unless a URL is given.
    """

    # onnx: an exported detector (cvray export onnx) run by onnxruntime; ``weights`` is the .onnx
    # file, arch / num_classes / min_size say what it is (cvray/models/onnx_backend.py)
    backend: Literal["torchvision", "detectron2", "onnx"] = "torchvision"
    arch: Arch = "maskrcnn"
    backbone: Backbone = "resnet50_fpn"
    num_classes: int | None = Field(
        default=None, ge=1,
        description="foreground categories (no background); None = taken from the dataset")
    weights: str | None = None
    weights_backbone: str | None = None
    strict_weights: bool = Field(
        default=False,
        description="False: skip tensors whose shape differs (e.g. a new class count) and log them",
    )
    norm: Literal["auto", "bn", "frozen_bn", "gn"] = Field(
        default="auto",
        description="backbone normalisation; auto = frozen BN with pretrained backbone weights, "
                    "else BatchNorm. GroupNorm (gn) trains from scratch at small batch sizes, where "
                    "BatchNorm's running statistics drift away from the per-batch ones")
    trainable_backbone_layers: int | None = Field(default=None, ge=0, le=6)
    min_size: int = Field(default=800, ge=16)
    max_size: int = Field(default=1333, ge=16)
    # Detector heads (torchvision names); None keeps torchvision's default.
    anchor_sizes: tuple[int, ...] | None = None
    rpn_pre_nms_top_n_train: int | None = None
    rpn_post_nms_top_n_train: int | None = None
    rpn_pre_nms_top_n_test: int | None = None
    rpn_post_nms_top_n_test: int | None = None
    box_batch_size_per_image: int | None = None
    # Head widths: torchvision's defaults (256 / 1024 / 256) unless set; smaller values make a
    # CPU-sized model (the demo uses 64 / 256 / 64 at 128 px).
    fpn_channels: int = Field(default=256, ge=8)
    box_head_dim: int = Field(default=1024, ge=8)
    mask_head_dim: int = Field(default=256, ge=8)
    mask_head_layers: int = Field(default=4, ge=1)
    # torchvision's "v2" R-CNN layout (maskrcnn_resnet50_fpn_v2, after "Rethinking ImageNet
    # Pre-training"): ``head_norm`` puts ``norm`` in the FPN, the box head's convs and the mask head;
    # ``box_head_convs`` > 0 replaces the two-FC box head with N 3x3 convs + one FC (4conv1fc).
    # Both matter when training from scratch (docs/training.md "The CPU recipe").
    head_norm: bool = False
    # RoI level assignment (FPN paper eq. 1): a box of side s pools from level
    # floor(4 + log2(s / roi_canonical_scale)), clamped to the FPN's levels. torchvision's 224 is
    # for ~800 px COCO inputs; at 128 px every box would pool from P2 (stride 4).
    roi_canonical_scale: int = Field(default=224, ge=8)
    # From-scratch training aids for R-CNN heads (cvray/models/rcnn.py): jittered copies of each
    # ground-truth box among the second stage's training proposals, and the RPN's IoU for an
    # anchor to count as foreground (torchvision's 0.7; None keeps it).
    roi_gt_jitter: int = Field(default=0, ge=0)
    roi_gt_jitter_scale: float = Field(default=0.1, gt=0.0, le=0.5)
    rpn_fg_iou_thresh: float | None = Field(default=None, gt=0.0, le=1.0)
    box_head_convs: int = Field(default=0, ge=0)
    # small_resnet_fpn (the demo/CPU backbone): stem + 4 stage widths, basic blocks per stage
    backbone_widths: tuple[int, int, int, int, int] = (32, 48, 64, 96, 128)
    backbone_blocks: int = Field(default=1, ge=0)
    box_score_thresh: float = Field(default=0.05, ge=0.0, le=1.0)
    detections_per_img: int = Field(default=100, ge=1)
    # Semantic segmentation
    aux_loss: bool = False
    # Detectron2: a model-zoo name ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml") or a
    # path to a Detectron2 YAML, plus ``KEY VALUE`` style overrides.
    d2_config: str | None = None
    d2_opts: tuple[str | int | float | bool | None | list, ...] = ()  # KEY, VALUE, ...: any YAML scalar

    @property
    def task(self) -> Literal["detection", "instance", "semantic"]:
        if self.arch in SEMANTIC_ARCHS:
            return "semantic"
        return "instance" if self.arch == "maskrcnn" else "detection"

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        if self.backend == "onnx":
            if not self.weights:
                raise ValueError("model.backend=onnx needs model.weights (the exported .onnx file)")
            if self.arch in SEMANTIC_ARCHS:
                raise ValueError("model.backend=onnx runs exported detection / instance models only")
            return self
        if self.backend == "detectron2":
            if not self.d2_config:
                raise ValueError("model.backend=detectron2 needs model.d2_config "
                                 "(a model-zoo name or a Detectron2 YAML path)")
            return self
        fpn = self.backbone.endswith("_fpn")
        if self.arch in DETECTION_ARCHS and not fpn:
            raise ValueError(f"model.arch={self.arch} needs an FPN backbone "
                             f"(resnet50_fpn, mobilenet_v3_large_fpn or small_resnet_fpn), got {self.backbone}")
        if self.backbone == "small_resnet_fpn" and self.weights_backbone is not None:
            raise ValueError("model.backbone=small_resnet_fpn is the demo/CPU backbone and has no "
                             "pretrained weights; use resnet50_fpn with model.weights_backbone")
        if self.arch in SEMANTIC_ARCHS and fpn:
            raise ValueError(f"model.arch={self.arch} takes a plain backbone "
                             f"(resnet50, resnet101, mobilenet_v3_large), got {self.backbone}")
        if self.arch == "lraspp" and self.backbone != "mobilenet_v3_large":
            raise ValueError("model.arch=lraspp exists only with backbone=mobilenet_v3_large")
        if self.arch == "fcn" and self.backbone == "mobilenet_v3_large":
            raise ValueError("model.arch=fcn exists only with resnet50 / resnet101 backbones")
        if self.min_size > self.max_size:
            raise ValueError(f"model.min_size={self.min_size} exceeds model.max_size={self.max_size}")
        return self
