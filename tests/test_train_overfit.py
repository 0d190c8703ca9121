"""The overfit check guards the pipeline: intact it memorises 8 images (AP50 >= 0.9 for boxes and
masks, train -> checkpoint -> letterboxed inference -> COCO AP); with one link broken it fails.

Each broken link is a bug that has been seen in detection codebases:
- label map shifted by one (model label k reported as category k+1: the missing ``- 1``),
- boxes flipped without the image (augmentation moves the targets but not the pixels),
- letterbox padding not undone (boxes and masks mapped back without subtracting the pad),
- masks resized with bilinear instead of nearest interpolation (in the scale jitter; the
  uint8 cast then erodes every mask by its fractional border).
The first and third break inference, so they reuse the intact model; the others break training
and train their own (about a minute each on 2 cores).
"""
from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
import torch.nn.functional as F

import cvray.train.transforms as transforms
from cvray.predict.engine import Predictor
from cvray.predict.geometry import Letterbox

from overfit_check import MIN_BBOX_AP50, MIN_SEGM_AP50, overfit_dataset, score, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return overfit_dataset(tmp_path_factory.mktemp("overfit"))


@pytest.fixture(scope="module")
def intact(data, tmp_path_factory):
    cfg, ckpt = train(data, tmp_path_factory.mktemp("runs"))
    return cfg, ckpt


def _passes(m: dict) -> bool:
    return m["bbox_AP50"] >= MIN_BBOX_AP50 and m["segm_AP50"] >= MIN_SEGM_AP50


def test_intact_pipeline_memorises_eight_images(data, intact):
    m = score(*intact, data)
    assert _passes(m), m


def test_label_map_shifted_by_one_fails_the_check(data, intact, monkeypatch):
    def shifted(self, labels):  # the classic off-by-one: background slot forgotten
        ids = np.asarray(self.category_ids, np.int64)
        return ids[np.clip(labels.astype(np.int64), 0, len(ids) - 1)]

    monkeypatch.setattr(Predictor, "_label_to_category", shifted)
    m = score(*intact, data)
    assert not _passes(m), m
    assert m["bbox_AP50"] < 0.5, m


def test_letterbox_padding_not_undone_fails_the_check(data, intact, monkeypatch):
    boxes_back, masks_back = Letterbox.boxes_to_original, Letterbox.masks_to_original
    monkeypatch.setattr(Letterbox, "boxes_to_original",
                        lambda self, b, clip=True: boxes_back(dataclasses.replace(self, pad_x=0, pad_y=0), b, clip))
    monkeypatch.setattr(Letterbox, "masks_to_original",
                        lambda self, m: masks_back(dataclasses.replace(self, pad_x=0, pad_y=0), m))
    m = score(*intact, data)
    assert not _passes(m), m
    assert m["bbox_AP50"] < 0.5 and m["segm_AP50"] < 0.5, m


def test_boxes_flipped_without_the_image_fail_the_check(data, tmp_path, monkeypatch):
    flip = transforms.RandomFlip.__call__

    def targets_only(self, image, target):
        out_image, out_target = flip(self, image, target)
        return image, out_target  # the flipped pixels are dropped, the flipped targets kept

    monkeypatch.setattr(transforms.RandomFlip, "__call__", targets_only)
    m = score(*train(data, tmp_path), data)
    assert not _passes(m), m


def test_masks_resized_bilinear_fail_the_check(data, tmp_path, monkeypatch):
    def interpolate(x, *args, mode="nearest", **kw):
        if mode == "nearest" and x.shape[1] > 0 and x.dtype.is_floating_point and x.max() <= 1:
            mode = "bilinear"  # the masks' resize (the image is resized bilinear already)
        return F.interpolate(x, *args, mode=mode, **kw)

    monkeypatch.setattr(transforms, "F", types.SimpleNamespace(interpolate=interpolate))
    m = score(*train(data, tmp_path), data)
    assert not _passes(m), m
