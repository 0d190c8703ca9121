"""torchvision detectors and segmenters built from a :class:`ModelConfig` (the default backend).

Detection: Faster R-CNN, Mask R-CNN, RetinaNet, FCOS on a ResNet-50-FPN or MobileNetV3-Large-FPN
backbone. The backbone is assembled here (not through ``*_resnet50_fpn()``) so that the FPN width,
head widths and anchors are configurable -- a 64-channel FPN makes a CPU-sized Mask R-CNN -- while
parameter names stay torchvision's, so torchvision's own COCO checkpoints load with ``weights``.
Semantic: DeepLabV3, FCN, LR-ASPP wrapped in :class:`~cvray.models.semantic.SemanticSegmenter`.

Following torchvision: with pretrained backbone weights the backbone's BatchNorm is frozen
(``FrozenBatchNorm2d``) and only ``trainable_backbone_layers`` train; from random init BatchNorm
trains and every layer is trainable.
"""
from __future__ import annotations

from typing import Callable

from torch import nn
from torchvision.models import mobilenet_v3_large, resnet50
from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

from cvray.models.config import ModelConfig
from cvray.models.cpu_backbone import SmallResNet
from cvray.models.rcnn import use_jittered_gt
from cvray.models.roi_align import FastMultiScaleRoIAlign
from cvray.models.semantic import SemanticSegmenter
from cvray.models.weights import load_into

__all__ = ["TorchvisionBackend", "build_backbone"]

_RESNET_STAGES = ["conv1", "layer1", "layer2", "layer3", "layer4"]
DEFAULT_ANCHORS = (32, 64, 128, 256, 512)  # torchvision's COCO anchors


def _freeze(module: nn.Module, trainable: Callable[[str], bool]) -> None:
    for name, p in module.named_parameters():
        if not trainable(name):
            p.requires_grad_(False)


def _group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups of at least 4 channels each."""
    g = 32
    while g > 1 and (channels % g or channels // g < 4):
        g //= 2
    return nn.GroupNorm(g, channels)


def norm_layer(cfg: ModelConfig) -> Callable[[int], nn.Module]:
    norm = cfg.norm
    if norm == "auto":
        norm = "frozen_bn" if cfg.weights_backbone is not None else "bn"
    return {"bn": nn.BatchNorm2d, "frozen_bn": FrozenBatchNorm2d, "gn": _group_norm}[norm]


def _resnet_style_fpn(body: nn.Module, stage_channels: list[int], C: int, one_stage: bool,
                      fpn_norm: Callable[[int], nn.Module] | None = None) -> tuple[BackboneWithFPN, list[int]]:
    """FPN over ``layer1..layer4`` (strides 4-32) of a ResNet-style body: C2-C5 + max-pool level
    for two-stage detectors, C3-C5 + P6/P7 for one-stage ones (torchvision's layouts)."""
    returned = [2, 3, 4] if one_stage else [1, 2, 3, 4]
    layers = {f"layer{k}": str(i) for i, k in enumerate(returned)}
    in_ch = [stage_channels[k - 1] for k in returned]
    extra = LastLevelP6P7(C, C) if one_stage else LastLevelMaxPool()
    strides = [2 ** (k + 1) for k in returned] + ([64, 128] if one_stage else [64])
    return BackboneWithFPN(body, layers, in_ch, C, extra_blocks=extra, norm_layer=fpn_norm), strides


def build_backbone(cfg: ModelConfig, *, one_stage: bool) -> tuple[BackboneWithFPN, list[int]]:
    """FPN backbone + the stride of each output level (used for anchors)."""
    pretrained = cfg.weights_backbone is not None
    norm = norm_layer(cfg)
    C = cfg.fpn_channels
    fpn_norm = norm if cfg.head_norm else None
    if cfg.backbone == "resnet50_fpn":
        body = resnet50(weights=None, norm_layer=norm)
        if pretrained:
            load_into(body, cfg.weights_backbone, ignore_prefixes=("fc.",))
        n = cfg.trainable_backbone_layers if cfg.trainable_backbone_layers is not None else (3 if pretrained else 5)
        keep = _RESNET_STAGES[::-1][: min(n, 5)]
        _freeze(body, lambda name: any(name.startswith(s) for s in keep) or (n == 5 and name.startswith("bn1")))
        return _resnet_style_fpn(body, [256 * 2 ** (k - 1) for k in (1, 2, 3, 4)], C, one_stage, fpn_norm)
    if cfg.backbone == "mobilenet_v3_large_fpn":
        net = mobilenet_v3_large(weights=None, norm_layer=norm)
        if pretrained:
            load_into(net, cfg.weights_backbone, ignore_prefixes=("classifier.",))
        feats = net.features
        # Stage boundaries are the blocks that reduce resolution (torchvision's ``_is_cn``).
        stages = [0] + [i for i, b in enumerate(feats) if getattr(b, "_is_cn", False)] + [len(feats) - 1]
        n = cfg.trainable_backbone_layers if cfg.trainable_backbone_layers is not None else (3 if pretrained else 6)
        first_trainable = stages[len(stages) - n] if n > 0 else len(feats)
        _freeze(feats, lambda name: int(name.split(".")[0]) >= first_trainable)
        returned = [len(stages) - 2, len(stages) - 1]
        layers = {f"{stages[k]}": str(i) for i, k in enumerate(returned)}
        in_ch = [feats[stages[k]].out_channels for k in returned]
        extra = LastLevelP6P7(C, C) if one_stage else LastLevelMaxPool()
        strides = [16, 32] + ([64, 128] if one_stage else [64])
        return BackboneWithFPN(feats, layers, in_ch, C, extra_blocks=extra, norm_layer=fpn_norm), strides
    if cfg.backbone == "small_resnet_fpn":
        body = SmallResNet(tuple(cfg.backbone_widths), cfg.backbone_blocks, norm=norm)
        return _resnet_style_fpn(body, body.out_channels_list, C, one_stage, fpn_norm)
    raise ValueError(f"model.backbone={cfg.backbone} is not a detection (FPN) backbone")


def _anchors(cfg: ModelConfig, strides: list[int], octaves: bool) -> AnchorGenerator:
    """Anchor sizes per level: one base size per level when ``anchor_sizes`` has one per level,
    else every size on every level (torchvision's MobileNet convention)."""
    sizes = tuple(cfg.anchor_sizes or DEFAULT_ANCHORS)
    if len(sizes) == len(strides):
        per_level = [(s,) for s in sizes]
    else:
        per_level = [sizes] * len(strides)
    if octaves:  # RetinaNet: three scales per octave
        per_level = [tuple(int(s * 2 ** (k / 3)) for s in lvl for k in range(3)) for lvl in per_level]
    ratios = ((0.5, 1.0, 2.0),) * len(per_level)
    return AnchorGenerator(tuple(per_level), ratios)


def _rcnn_kwargs(cfg: ModelConfig) -> dict:
    names = ["rpn_pre_nms_top_n_train", "rpn_post_nms_top_n_train", "rpn_pre_nms_top_n_test",
             "rpn_post_nms_top_n_test", "box_batch_size_per_image", "rpn_fg_iou_thresh"]
    kw = {k: getattr(cfg, k) for k in names if getattr(cfg, k) is not None}
    kw.update(box_score_thresh=cfg.box_score_thresh, box_detections_per_img=cfg.detections_per_img)
    return kw


def _build_detector(cfg: ModelConfig) -> nn.Module:
    K = cfg.num_classes + 1  # background is class 0 for every torchvision detector
    common = dict(min_size=cfg.min_size, max_size=cfg.max_size)
    one_stage = cfg.arch in ("retinanet", "fcos")
    backbone, strides = build_backbone(cfg, one_stage=one_stage)
    C = backbone.out_channels
    if cfg.arch in ("fasterrcnn", "maskrcnn"):
        head_norm = norm_layer(cfg) if cfg.head_norm else None
        if cfg.box_head_convs:
            box_head = FastRCNNConvFCHead((C, 7, 7), [C] * cfg.box_head_convs, [cfg.box_head_dim],
                                          norm_layer=head_norm)
        else:
            box_head = TwoMLPHead(C * 7 * 7, cfg.box_head_dim)
        box_pred = FastRCNNPredictor(cfg.box_head_dim, K)
        levels = ["0", "1", "2", "3"]  # the FPN outputs RoIs pool from (not the max-pool level)
        kw = dict(rpn_anchor_generator=_anchors(cfg, strides, octaves=False), box_head=box_head,
                  box_predictor=box_pred, **_rcnn_kwargs(cfg), **common,
                  box_roi_pool=FastMultiScaleRoIAlign(levels, 7, 2, canonical_scale=cfg.roi_canonical_scale))
        if cfg.arch == "fasterrcnn":
            model = FasterRCNN(backbone, num_classes=None, **kw)
        else:
            layers = (cfg.mask_head_dim,) * cfg.mask_head_layers
            mask_pool = FastMultiScaleRoIAlign(levels, 14, 2, canonical_scale=cfg.roi_canonical_scale)
            model = MaskRCNN(backbone, num_classes=None, mask_roi_pool=mask_pool,
                             mask_head=MaskRCNNHeads(C, layers, 1, norm_layer=head_norm),
                             mask_predictor=MaskRCNNPredictor(cfg.mask_head_dim, cfg.mask_head_dim, K), **kw)
        if cfg.roi_gt_jitter:
            use_jittered_gt(model, cfg.roi_gt_jitter, cfg.roi_gt_jitter_scale)
        return model
    kw = dict(score_thresh=cfg.box_score_thresh, detections_per_img=cfg.detections_per_img, **common)
    if cfg.arch == "retinanet":
        return RetinaNet(backbone, K, anchor_generator=_anchors(cfg, strides, octaves=True), **kw)
    # FCOS: one anchor per location whose size equals the level's stride (the paper's points).
    fcos_anchors = AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(strides))
    return FCOS(backbone, K, anchor_generator=fcos_anchors, **kw)


def _build_semantic(cfg: ModelConfig, loss: nn.Module | None) -> nn.Module:
    from torchvision.models import segmentation as seg

    name = f"{cfg.arch}_{cfg.backbone}"
    builder = getattr(seg, name, None)
    if builder is None:
        raise ValueError(f"torchvision has no semantic model {name}")
    kw = {"aux_loss": cfg.aux_loss} if cfg.arch != "lraspp" else {}
    net = builder(weights=None, weights_backbone=None, num_classes=cfg.num_classes + 1, **kw)
    if cfg.weights_backbone is not None:
        load_into(net.backbone, cfg.weights_backbone, ignore_prefixes=("fc.", "classifier."))
    return SemanticSegmenter(net, loss=loss)


class TorchvisionBackend:
    """The embedded default backend: every model is a plain ``nn.Module`` with torchvision's
    ``model(images, targets) -> loss dict`` / ``model(images) -> [prediction dict]`` protocol."""

    name = "torchvision"

    def build(self, cfg: ModelConfig, *, semantic_loss: nn.Module | None = None) -> nn.Module:
        if cfg.task == "semantic":
            model = _build_semantic(cfg, semantic_loss)
            target = model.net
        else:
            model = target = _build_detector(cfg)
        if cfg.weights is not None:
            load_into(target, cfg.weights, strict=cfg.strict_weights)
        return model

    def available(self) -> bool:
        return True


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total

