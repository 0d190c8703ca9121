"""Resize/letterbox forward and inverse maps: exact round trips for boxes and masks."""
from __future__ import annotations

import numpy as np
import pytest

from cvray.predict.geometry import Letterbox


def test_letterbox_parameters_exact():
    lb = Letterbox.fit((240, 320), (640, 640))  # scale 2, content 480x640, pad top 80
    assert (lb.scale_x, lb.scale_y, lb.pad_x, lb.pad_y) == (2.0, 2.0, 0, 80)
    lb = Letterbox.fit((100, 50), (200, 200))   # scale 2, content 200x100, pad left 50
    assert (lb.scale_x, lb.scale_y, lb.pad_x, lb.pad_y) == (2.0, 2.0, 50, 0)
    lb = Letterbox.fit((100, 50), (300, 200), mode="resize")
    assert (lb.scale_x, lb.scale_y, lb.pad_x, lb.pad_y) == (4.0, 3.0, 0, 0)


def test_boxes_forward_known_values_and_round_trip():
    lb = Letterbox.fit((240, 320), (640, 640))
    boxes = np.array([[0, 0, 320, 240], [10.5, 20.25, 30, 40]])
    fwd = lb.boxes_to_model(boxes)
    np.testing.assert_array_equal(fwd, [[0, 80, 640, 560], [21, 120.5, 60, 160]])
    np.testing.assert_array_equal(lb.boxes_to_original(fwd), boxes)  # exact: binary-exact scale


@pytest.mark.parametrize("src,dst,mode", [((480, 640), (512, 512), "letterbox"),
                                          ((77, 131), (128, 128), "letterbox"),
                                          ((77, 131), (96, 160), "resize")])
def test_boxes_round_trip_any_scale(src, dst, mode):
    rng = np.random.default_rng(0)
    h, w = src
    xy = rng.uniform(0, 1, (50, 4)) * [w, h, w, h]
    boxes = np.concatenate([np.minimum(xy[:, :2], xy[:, 2:]), np.maximum(xy[:, :2], xy[:, 2:])], 1)
    lb = Letterbox.fit(src, dst, mode=mode)
    np.testing.assert_allclose(lb.boxes_to_original(lb.boxes_to_model(boxes)), boxes, rtol=0, atol=1e-9)
    # model-space box clipped back inside the original image
    out = lb.boxes_to_original(np.array([[-50, -50, 10_000, 10_000]]))
    np.testing.assert_array_equal(out, [[0, 0, w, h]])


def test_image_content_and_padding():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    lb = Letterbox.fit((2, 3), (6, 6), pad_value=7)  # scale 2: content 4x6, pad top 1
    out = lb.apply_image(img, interpolation=0)  # INTER_NEAREST
    assert out.shape == (6, 6, 3)
    assert (out[0] == 7).all() and (out[5] == 7).all()
    np.testing.assert_array_equal(out[1:5], np.repeat(np.repeat(img, 2, 0), 2, 1))


@pytest.mark.parametrize("src,dst", [((30, 20), (60, 60)), ((30, 20), (90, 90)), ((17, 9), (68, 68))])
def test_masks_round_trip_exact_integer_upscale(src, dst):
    rng = np.random.default_rng(1)
    masks = rng.integers(0, 2, (3,) + src).astype(np.uint8)
    lb = Letterbox.fit(src, dst)
    fwd = np.stack([lb.apply_mask(m) for m in masks])
    assert fwd.shape == (3,) + dst
    np.testing.assert_array_equal(lb.masks_to_original(fwd), masks)
    # padding carries no mask
    assert fwd.sum() == masks.sum() * int(round(lb.scale_x)) * int(round(lb.scale_y))


def test_mask_downscale_inverse_is_block_lookup():
    """Scale 1/2: original pixel (i, j) reads model pixel (i // 2, j // 2), padding offset added."""
    lb = Letterbox.fit((40, 20), (20, 20))  # scale 0.5, content 20x10, pad_x 5
    model = np.random.default_rng(2).integers(0, 5, (20, 20)).astype(np.uint8)
    back = lb.masks_to_original(model)
    i, j = np.meshgrid(np.arange(40), np.arange(20), indexing="ij")
    np.testing.assert_array_equal(back, model[i // 2, j // 2 + 5])


def test_bad_size_is_named():
    with pytest.raises(ValueError, match="positive"):
        Letterbox.fit((0, 10), (32, 32))
    lb = Letterbox.fit((10, 10), (32, 32))
    with pytest.raises(ValueError, match=r"\(10, 10\)"):
        lb.apply_image(np.zeros((11, 10, 3), np.uint8))
