"""Semantic losses and metrics: ignore_index is excluded, weights apply, values match references."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvray.train.config import LossConfig
from cvray.train.evaluation import ConfusionMatrix
from cvray.train.losses import build_loss

IGN = 255


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 8, 8, generator=g)
    target = torch.randint(0, 3, (2, 8, 8), generator=g)
    target[:, :2] = IGN
    return logits, target


@pytest.mark.parametrize("kind", ["ce", "dice", "focal", "ce_dice"])
def test_ignored_pixels_do_not_change_the_loss(kind):
    loss = build_loss(LossConfig(kind=kind, ignore_index=IGN), 3)
    logits, target = _data()
    other = logits.clone()
    other[:, :, :2] = torch.randn(2, 3, 2, 8) * 50  # arbitrary logits where the target is ignored
    assert torch.isclose(loss(logits, target), loss(other, target), atol=1e-6)


def test_ce_and_focal_match_references():
    logits, target = _data(1)
    w = (0.2, 1.0, 3.0)
    ce = build_loss(LossConfig(kind="ce", class_weights=w), 3)(logits, target)
    ref = F.cross_entropy(logits, target, weight=torch.tensor(w), ignore_index=IGN)
    assert torch.isclose(ce, ref)
    # focal with gamma=0 and no weights is plain cross-entropy over valid pixels
    f0 = build_loss(LossConfig(kind="focal", focal_gamma=0.0), 3)(logits, target)
    assert torch.isclose(f0, F.cross_entropy(logits, target, ignore_index=IGN), atol=1e-6)
    # hand-computed focal value on one pixel
    one = torch.tensor([[[[2.0]], [[0.0]], [[-1.0]]]])
    p = math.exp(2) / (math.exp(2) + 1 + math.exp(-1))
    f2 = build_loss(LossConfig(kind="focal", focal_gamma=2.0), 3)(one, torch.tensor([[[0]]]))
    assert math.isclose(float(f2), -(1 - p) ** 2 * math.log(p), rel_tol=1e-5)


def test_dice_is_zero_for_a_perfect_prediction_and_one_for_disjoint():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2] = 1
    perfect = F.one_hot(target, 2).permute(0, 3, 1, 2).float() * 100
    dice = build_loss(LossConfig(kind="dice", dice_smooth=0.0), 2)
    assert float(dice(perfect, target)) < 1e-6
    wrong = F.one_hot(1 - target, 2).permute(0, 3, 1, 2).float() * 100
    assert math.isclose(float(dice(wrong, target)), 1.0, abs_tol=1e-6)
    ce_dice = build_loss(LossConfig(kind="ce_dice", dice_weight=2.0, dice_smooth=0.0), 2)
    ref = F.cross_entropy(wrong, target) + 2.0 * 1.0
    assert torch.isclose(ce_dice(wrong, target), ref, atol=1e-5)


def test_class_weights_must_match_class_count():
    with pytest.raises(ValueError, match="class_weights has 2 entries"):
        build_loss(LossConfig(class_weights=(1.0, 2.0)), 3)


def test_confusion_matrix_miou_excludes_ignore_and_combines():
    pred = np.array([[0, 1, 1], [2, 2, 0]])
    gt = np.array([[0, 1, 2], [2, IGN, 0]])
    a, b = ConfusionMatrix(3, IGN), ConfusionMatrix(3, IGN)
    a.update(pred[:1], gt[:1])
    b.update(pred[1:], gt[1:])
    a.combine([b.matrix])
    out = a.compute()
    # class 0: tp 2, fp 0, fn 0 -> 1; class 1: tp 1, fp 1 -> 0.5; class 2: tp 1, fn 1 -> 0.5
    assert out["per_class_iou"] == [1.0, 0.5, 0.5]
    assert math.isclose(out["mIoU"], 2 / 3)
    assert math.isclose(out["mDice"], (1 + 2 / 3 + 2 / 3) / 3)
    assert math.isclose(out["pixel_acc"], 4 / 5)  # the ignored pixel counts nowhere
