"""The demo/CPU backbone: four FPN levels at strides 4-32 (plus the max-pool level), so objects of
5-40 px at the demo's 128 px input land on feature maps of 32x32 ... 4x4 cells."""
from __future__ import annotations

import pytest
import torch

from cvray.models import build_model
from cvray.models.config import ModelConfig
from cvray.train.data import CategoryMap, record_to_target


def test_small_resnet_fpn_levels_and_strides():
    cfg = ModelConfig(arch="maskrcnn", backbone="small_resnet_fpn", norm="gn", num_classes=6,
                      min_size=128, max_size=128, fpn_channels=32, anchor_sizes=(8, 16, 32, 64, 128))
    model = build_model(cfg)
    feats = model.backbone(torch.zeros(1, 3, 128, 128))
    assert [tuple(f.shape[-2:]) for f in feats.values()] == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    assert all(f.shape[1] == 32 for f in feats.values())
    # one anchor size per level, three ratios
    assert model.rpn.anchor_generator.num_anchors_per_location() == [3] * 5
    # the one-stage heads take P3-P7
    fcos = build_model(cfg.model_copy(update={"arch": "fcos"}))
    assert len(fcos.backbone(torch.zeros(1, 3, 128, 128))) == 5


def test_small_resnet_has_no_pretrained_weights():
    with pytest.raises(ValueError, match="small_resnet_fpn"):
        ModelConfig(backbone="small_resnet_fpn", weights_backbone="/x/resnet.pth")


def test_image_without_instances_gives_empty_mask_stack():
    """An image whose only annotation is a crowd region (the generator makes such images)."""
    rec = {"image_id": 7, "file_name": "a.jpg", "height": 4, "width": 5, "annotations": [
        {"id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "iscrowd": 1, "area": 4,
         "segmentation": {"size": [4, 5], "counts": [0, 2, 2, 2, 14]}}]}
    t = record_to_target(rec, CategoryMap((1,), ("circle",)), task="instance")
    assert t["masks"].shape == (0, 4, 5) and t["masks"].dtype == torch.uint8
    assert t["boxes"].shape == (0, 4)
