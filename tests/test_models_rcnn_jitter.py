"""Jittered ground-truth proposals (``model.roi_gt_jitter``): more positives for the second stage
in training, nothing changed at inference or in the state dict."""
from __future__ import annotations

import torch
from torchvision.ops import box_iou

from cvray.models.config import ModelConfig
from cvray.models.rcnn import JitteredGtRoIHeads, jitter_boxes
from cvray.models.torchvision_backend import TorchvisionBackend

SMALL = dict(arch="maskrcnn", backbone="small_resnet_fpn", norm="gn", num_classes=3, min_size=64,
             max_size=64, fpn_channels=16, box_head_dim=32, mask_head_dim=16, mask_head_layers=1,
             anchor_sizes=(8, 16, 32, 64, 128), backbone_widths=(8, 8, 16, 16, 16))


def test_jittered_boxes_overlap_their_source():
    g = torch.tensor([[10.0, 10.0, 30.0, 40.0], [50.0, 50.0, 58.0, 56.0]])
    j = jitter_boxes(g, 300, 0.1, torch.Generator().manual_seed(0))
    assert j.shape == (600, 4)
    iou = box_iou(j, g)
    # copy k of box i is row k * N + i: it overlaps its own source, mostly above the 0.5 fg IoU
    own = iou[torch.arange(600), torch.arange(600) % 2]
    assert own.min() > 0.4 and (own > 0.5).float().mean() > 0.95 and own.median() < 0.9
    assert jitter_boxes(g, 0, 0.1).shape == (0, 4) and jitter_boxes(g[:0], 3, 0.1).shape == (0, 4)


def test_training_gets_more_positives_and_inference_is_unchanged():
    torch.manual_seed(0)
    plain = TorchvisionBackend().build(ModelConfig(**SMALL))
    jit = TorchvisionBackend().build(ModelConfig(**SMALL, roi_gt_jitter=4))
    assert isinstance(jit.roi_heads, JitteredGtRoIHeads) and not isinstance(plain.roi_heads, JitteredGtRoIHeads)
    assert plain.state_dict().keys() == jit.state_dict().keys()
    jit.load_state_dict(plain.state_dict())

    boxes = torch.tensor([[4.0, 4.0, 20.0, 24.0], [30.0, 30.0, 50.0, 44.0]])
    proposals = [torch.tensor([[0.0, 0.0, 8.0, 8.0]])]
    assert len(plain.roi_heads.add_gt_proposals(proposals, [boxes])[0]) == 3
    assert len(jit.roi_heads.add_gt_proposals(proposals, [boxes])[0]) == 3 + 4 * 2

    masks = torch.zeros(2, 64, 64, dtype=torch.uint8)
    masks[0, 4:24, 4:20] = 1
    masks[1, 30:44, 30:50] = 1
    target = [{"boxes": boxes, "labels": torch.tensor([1, 2]), "masks": masks}]
    img = [torch.rand(3, 64, 64)]
    jit.train()
    losses = jit(img, target)
    assert set(losses) >= {"loss_classifier", "loss_box_reg", "loss_mask"}
    assert all(torch.isfinite(v) for v in losses.values())
    plain.eval()
    jit.eval()
    with torch.no_grad():
        a, b = plain(img)[0], jit(img)[0]
    assert all(torch.equal(a[k], b[k]) for k in ("boxes", "scores", "labels", "masks"))
