"""A user's downloaded torchvision COCO weights load into cvray's model, strictly, and give the
same outputs.

torchvision's published COCO checkpoints are state dicts of the models its builders make
(``maskrcnn_resnet50_fpn`` & co.), saved from FrozenBatchNorm2d models, so their BatchNorm entries
carry no ``num_batches_tracked``. Nothing can be downloaded here, so the test makes a state dict
of exactly that layout with torchvision's own builder (random init, BatchNorm statistics
randomised so that a mix-up of means and variances would show), saves it, loads it into cvray's
model with ``strict_weights=True`` and compares the two models' predictions on the same image.
"""
from __future__ import annotations

import pytest
import torch
from torchvision.models import detection as tvd

from cvray.models import build_model
from cvray.models.config import ModelConfig

BUILDERS = {
    "maskrcnn": tvd.maskrcnn_resnet50_fpn,
    "fasterrcnn": tvd.fasterrcnn_resnet50_fpn,
    "retinanet": tvd.retinanet_resnet50_fpn,
    "fcos": tvd.fcos_resnet50_fpn,
}
SIZE = 256  # both models resize to this (torchvision's 800 px would only slow the test)


def _published_layout(arch: str) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    # score threshold 0: random heads score below torchvision's 0.05 (focal-loss prior 0.01)
    thresh = {"score_thresh": 0.0} if arch in ("retinanet", "fcos") else {"box_score_thresh": 0.0}
    ref = BUILDERS[arch](weights=None, weights_backbone=None, num_classes=91, min_size=SIZE,
                         max_size=SIZE, **thresh)
    gen = torch.Generator().manual_seed(1)
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    ref.eval()
    state = {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    return ref, state


@pytest.mark.parametrize("arch,norm", [("maskrcnn", "auto"), ("maskrcnn", "frozen_bn"),
                                       ("fasterrcnn", "auto"), ("retinanet", "auto"), ("fcos", "auto")])
def test_torchvision_coco_layout_loads_strictly_with_identical_outputs(tmp_path, arch, norm):
    ref, state = _published_layout(arch)
    path = tmp_path / f"{arch}_coco.pth"
    torch.save(state, path)
    cfg = ModelConfig(arch=arch, backbone="resnet50_fpn", num_classes=90, norm=norm, min_size=SIZE,
                      max_size=SIZE, box_score_thresh=0.0, weights=str(path), strict_weights=True,
                      detections_per_img=300 if arch == "retinanet" else 100)  # torchvision's defaults
    ours = build_model(cfg).eval()
    torch.manual_seed(2)
    image = torch.rand(3, 200, 240)
    with torch.no_grad():
        if norm == "frozen_bn":
            # FrozenBatchNorm2d folds the statistics in another order (1e-7 differences), enough
            # to reorder near-tied random-init detections: compare the FPN features instead
            x = torch.rand(1, 3, SIZE, SIZE)
            for fa, fb in zip(ref.backbone(x).values(), ours.backbone(x).values()):
                assert float((fb - fa).norm() / fa.norm()) < 1e-5
            return
        a, b = ref([image])[0], ours([image])[0]
    assert set(a) == set(b)
    assert len(a["boxes"]) > 0
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-5)


def test_a_wrong_architecture_is_refused_naming_the_file(tmp_path):
    _, state = _published_layout("fasterrcnn")
    path = tmp_path / "frcnn.pth"
    torch.save(state, path)
    cfg = ModelConfig(arch="maskrcnn", backbone="resnet50_fpn", num_classes=90, min_size=SIZE,
                      max_size=SIZE, weights=str(path), strict_weights=True)
    with pytest.raises(Exception, match="frcnn.pth"):
        build_model(cfg)
