"""Model backends: every torchvision architecture builds and runs, weights really load."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from cvray.models import BackendUnavailable, ModelConfig, WeightsError, build_model, read_state_dict

TINY = dict(min_size=64, max_size=64, fpn_channels=64, box_head_dim=64, mask_head_dim=16,
            mask_head_layers=1, anchor_sizes=(16, 32, 64), rpn_post_nms_top_n_test=50,
            rpn_pre_nms_top_n_test=50)


def _target(n_cls: int = 2):
    masks = torch.zeros((2, 64, 64), dtype=torch.uint8)
    masks[0, 10:30, 8:40] = 1
    masks[1, 35:60, 30:62] = 1
    return {"boxes": torch.tensor([[8.0, 10, 40, 30], [30, 35, 62, 60]]),
            "labels": torch.tensor([1, n_cls]), "masks": masks}


@pytest.mark.parametrize("arch,backbone", [
    ("fasterrcnn", "mobilenet_v3_large_fpn"),
    ("maskrcnn", "mobilenet_v3_large_fpn"),
    ("retinanet", "mobilenet_v3_large_fpn"),
    ("fcos", "mobilenet_v3_large_fpn"),
    ("maskrcnn", "resnet50_fpn"),
])
def test_detectors_train_and_predict(arch, backbone):
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, backbone=backbone, num_classes=2, norm="gn", **TINY)
    model = build_model(cfg)
    model.train()
    losses = model([torch.rand(3, 64, 64)], [_target()])
    assert all(torch.isfinite(v) for v in losses.values())
    expected = {"fasterrcnn": {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"},
                "retinanet": {"classification", "bbox_regression"},
                "fcos": {"classification", "bbox_regression", "bbox_ctrness"}}
    expected["maskrcnn"] = expected["fasterrcnn"] | {"loss_mask"}
    assert set(losses) == expected[arch]
    model.eval()
    with torch.no_grad():
        (pred,) = model([torch.rand(3, 48, 80)])
    assert pred["boxes"].shape[1] == 4 and len(pred["scores"]) == len(pred["labels"])
    if arch == "maskrcnn":  # masks are pasted back at the input size, not the resized one
        assert pred["masks"].shape[1:] == (1, 48, 80)
    # input size is configurable: the internal transform resizes to min_size
    assert model.transform.min_size == (64,) and model.transform.max_size == 64


@pytest.mark.parametrize("arch,backbone", [("lraspp", "mobilenet_v3_large"),
                                           ("deeplabv3", "mobilenet_v3_large")])
def test_semantic_models_loss_ignores_ignore_index(arch, backbone):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, backbone=backbone, num_classes=2))
    model.train()
    sem = torch.randint(0, 3, (64, 64))
    sem[:8] = 255
    losses = model([torch.rand(3, 64, 64)] * 2, [{"sem_seg": sem}] * 2)
    assert set(losses) == {"loss_sem_seg"} and torch.isfinite(losses["loss_sem_seg"])
    model.eval()
    with torch.no_grad():
        (pred,) = model([torch.rand(3, 40, 56)])
    assert pred["sem_seg"].shape == (40, 56) and int(pred["sem_seg"].max()) <= 2


def test_invalid_combinations_are_config_errors():
    with pytest.raises(ValueError, match="needs an FPN backbone"):
        ModelConfig(arch="fcos", backbone="resnet50")
    with pytest.raises(ValueError, match="lraspp exists only"):
        ModelConfig(arch="lraspp", backbone="resnet50")
    with pytest.raises(ValueError, match="num_classes is not set"):
        build_model(ModelConfig(arch="fasterrcnn", backbone="mobilenet_v3_large_fpn"))


def test_weights_load_from_local_file(tmp_path):
    """Real loading path: a saved state dict -> torch.load(weights_only=True) -> model."""
    torch.manual_seed(1)
    cfg = ModelConfig(arch="maskrcnn", backbone="mobilenet_v3_large_fpn", num_classes=2, norm="gn", **TINY)
    src = build_model(cfg)
    path = tmp_path / "w.pt"
    torch.save({"model": src.state_dict(), "iteration": 7}, path)  # cvray checkpoint layout
    torch.manual_seed(2)
    dst = build_model(cfg.model_copy(update={"weights": str(path), "strict_weights": True}))
    for (k, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert torch.equal(a, b), k
    # a different class count: the predictor tensors are skipped, the rest loads
    other = build_model(cfg.model_copy(update={"num_classes": 5, "weights": str(path)}))
    assert torch.equal(other.backbone.body["0"][0].weight, src.backbone.body["0"][0].weight)
    assert other.roi_heads.box_predictor.cls_score.out_features == 6
    with pytest.raises(WeightsError, match="shapes differ"):
        build_model(cfg.model_copy(update={"num_classes": 5, "weights": str(path), "strict_weights": True}))


def test_backbone_weights_load_and_freeze(tmp_path):
    from torchvision.models import mobilenet_v3_large

    torch.manual_seed(3)
    net = mobilenet_v3_large(weights=None)
    path = tmp_path / "mnv3.pt"
    torch.save(net.state_dict(), path)
    cfg = ModelConfig(arch="fasterrcnn", backbone="mobilenet_v3_large_fpn", num_classes=2,
                      weights_backbone=str(path), trainable_backbone_layers=2, **TINY)
    model = build_model(cfg)
    assert torch.equal(model.backbone.body["0"][0].weight, net.features[0][0].weight)
    assert not model.backbone.body["0"][0].weight.requires_grad  # early stage frozen
    assert model.backbone.body["16"][0].weight.requires_grad  # last stage trains


def test_weights_refuse_pickled_code_and_name_the_file(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)
    with pytest.raises(WeightsError, match="evil.pt"):
        read_state_dict(str(path))
    with pytest.raises(WeightsError, match="missing.pt"):
        read_state_dict(str(tmp_path / "missing.pt"))


def test_detectron2_backend_reports_install_guide_when_missing():
    if importlib.util.find_spec("detectron2") is not None:
        pytest.skip("detectron2 is installed; the missing-library message cannot be shown")
    cfg = ModelConfig(backend="detectron2", d2_config="COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
                      num_classes=2)
    with pytest.raises(BackendUnavailable, match="detectron2.readthedocs.io"):
        build_model(cfg)


@pytest.mark.skipif(importlib.util.find_spec("detectron2") is None,
                    reason="Detectron2 is not installed (not on PyPI; see "
                           "https://detectron2.readthedocs.io/en/latest/tutorials/install.html)")
def test_detectron2_mask_rcnn_trains_and_predicts_through_cvray_protocol():
    cfg = ModelConfig(backend="detectron2", arch="maskrcnn",
                      d2_config="COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
                      d2_opts=("MODEL.RESNETS.DEPTH", "50"), num_classes=2, min_size=64, max_size=64)
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    losses = model([torch.rand(3, 64, 64)], [_target()])
    assert {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        (pred,) = model([torch.rand(3, 48, 80)])
    assert set(pred) >= {"boxes", "scores", "labels"}
    assert (pred["labels"] >= 1).all() and (pred["labels"] <= 2).all()
