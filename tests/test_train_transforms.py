"""Augmentations move image, boxes and masks together (the annotations stay aligned)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cvray.train.config import AugmentConfig
from cvray.train.transforms import (ColorJitter, RandomCrop, RandomFlip, RandomScale,
                                    build_transforms)


def _scene(h=60, w=80):
    """Two rectangles, each painted in its own pure colour, with exact masks and boxes."""
    image = torch.zeros(3, h, w)
    masks = torch.zeros(2, h, w, dtype=torch.uint8)
    masks[0, 5:25, 10:40] = 1
    masks[1, 30:55, 45:75] = 1
    image[0][masks[0].bool()] = 1.0  # red object 0
    image[2][masks[1].bool()] = 1.0  # blue object 1
    sem = torch.zeros(h, w, dtype=torch.long)
    sem[masks[0].bool()] = 1
    sem[masks[1].bool()] = 2
    target = {"boxes": torch.tensor([[10.0, 5, 40, 25], [45, 30, 75, 55]]), "labels": torch.tensor([1, 2]),
              "masks": masks, "sem_seg": sem}
    return image, target


def _mask_box(m: torch.Tensor) -> list[float]:
    ys, xs = torch.nonzero(m, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def _assert_aligned(image, t, tol=1.0):
    assert len(t["boxes"]) == len(t["labels"]) == len(t["masks"])
    for box, label, m in zip(t["boxes"], t["labels"], t["masks"]):
        m = m.bool()
        assert m.any()
        # box and mask agree (within one pixel after resampling)
        assert np.allclose(box.tolist(), _mask_box(m), atol=tol), (box, _mask_box(m))
        # the image under the mask shows this object's colour: red for label 1, blue for 2
        channel = 0 if label == 1 else 2
        assert image[channel][m].mean() > 0.9
        assert image[2 - channel][m].mean() < 0.1
        # semantic map agrees with the instance mask
        assert (t["sem_seg"][m] == label).float().mean() > 0.97


@pytest.mark.parametrize("seed", range(6))
def test_full_policy_keeps_annotations_aligned(seed):
    cfg = AugmentConfig(hflip_prob=0.5, vflip_prob=0.5, scale_range=(0.6, 1.7), crop_size=(48, 64))
    tf = build_transforms(cfg, seed)
    image, target = _scene()
    out_img, out = tf(image, target)
    assert out_img.shape[-2:] == out["masks"].shape[-2:] == out["sem_seg"].shape
    _assert_aligned(out_img, out)


def test_flip_is_exact():
    image, t = _scene()
    rng = np.random.default_rng(0)
    img2, t2 = RandomFlip(1.0, rng, horizontal=True)(image, t)
    assert torch.equal(img2, image.flip(-1)) and torch.equal(t2["masks"], t["masks"].flip(-1))
    assert t2["boxes"].tolist() == [[40.0, 5, 70, 25], [5, 30, 35, 55]]
    img3, t3 = RandomFlip(1.0, rng, horizontal=False)(image, t)
    assert t3["boxes"].tolist() == [[10.0, 35, 40, 55], [45, 5, 75, 30]]
    _assert_aligned(img3, t3, tol=0)


def test_scale_uses_nearest_for_masks_and_scales_boxes():
    image, t = _scene()
    img2, t2 = RandomScale(2.0, 2.0, np.random.default_rng(0))(image, t)
    assert img2.shape[-2:] == (120, 160)
    assert set(torch.unique(t2["masks"]).tolist()) <= {0, 1}  # nearest: still binary
    assert set(torch.unique(t2["sem_seg"]).tolist()) <= {0, 1, 2}
    assert t2["boxes"].tolist() == [[20.0, 10, 80, 50], [90, 60, 150, 110]]
    _assert_aligned(img2, t2, tol=0)


def test_crop_drops_instances_outside_and_recomputes_boxes():
    image, t = _scene()
    rng = np.random.default_rng(0)

    class Fixed:  # window at the top-left, containing only object 0 and part of nothing else
        def integers(self, lo, hi):
            return 0

        def random(self):
            return 0.0

    crop = RandomCrop((28, 44), rng)
    crop.rng = Fixed()
    img2, t2 = crop(image, t)
    assert img2.shape[-2:] == (28, 44)
    assert t2["labels"].tolist() == [1]
    assert t2["boxes"].tolist() == [[10.0, 5, 40, 25]]
    _assert_aligned(img2, t2, tol=0)


def test_colour_jitter_changes_pixels_not_geometry():
    image, t = _scene()
    image = image * 0.5 + 0.25
    img2, t2 = ColorJitter(0.4, 0.4, 0.4, 0.1, np.random.default_rng(1))(image, t)
    assert not torch.allclose(img2, image)
    assert t2 is t


def test_policy_is_reproducible_from_its_seed_and_state():
    cfg = AugmentConfig(hflip_prob=0.5, scale_range=(0.5, 1.5), crop_size=(40, 40), brightness=0.2)
    a, b = build_transforms(cfg, 7), build_transforms(cfg, 7)
    image, t = _scene()
    for _ in range(3):
        ia, ta = a(image, t)
        ib, tb = b(image, t)
        assert torch.equal(ia, ib) and torch.equal(ta["boxes"], tb["boxes"])
    state = a.get_state()
    ia, _ = a(image, t)
    b.set_state(state)
    ib, _ = b(image, t)
    assert torch.equal(ia, ib)


def test_random_pad_moves_boxes_and_masks_with_the_content():
    import numpy as np
    import torch

    from cvray.train.transforms import RandomPad

    img = torch.rand(3, 6, 10)
    masks = torch.zeros(1, 6, 10, dtype=torch.uint8)
    masks[0, 1:3, 2:5] = 1
    target = {"boxes": torch.tensor([[2.0, 1.0, 5.0, 3.0]]), "labels": torch.tensor([1]), "masks": masks}
    out, t = RandomPad(1.0, 114, np.random.default_rng(0))(img, target)
    assert out.shape == (3, 10, 10)
    oy = int(torch.nonzero(t["masks"][0]).min(0).values[0]) - 1  # mask row 1 -> 1 + oy
    assert t["boxes"].tolist() == [[2.0, 1.0 + oy, 5.0, 3.0 + oy]]
    torch.testing.assert_close(out[:, oy:oy + 6], img)
    band = torch.cat([out[:, :oy], out[:, oy + 6:]], 1)
    assert torch.all(band == 114 / 255.0)
    square = torch.rand(3, 8, 8)
    assert RandomPad(1.0, 114, np.random.default_rng(0))(square, {})[0] is square
