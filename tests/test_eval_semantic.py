"""Semantic metrics, instance error types, semantic post-processing and QA export on hand-built masks."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from cvray.evaluate.config import InstanceErrorConfig
from cvray.evaluate.instance_errors import InstanceErrorCounter, classify_instances
from cvray.evaluate.qa_export import class_color, export_qa
from cvray.evaluate.semantic import SemanticMetrics, boundary_map
from cvray.evaluate.seg_post import SegPostConfig, postprocess_semantic


def _square(shape, y, x, s, val=1, base=None):
    m = np.zeros(shape, np.int32) if base is None else base.copy()
    m[y:y + s, x:x + s] = val
    return m


def test_iou_dice_accuracy_and_ignore_exact():
    gt = _square((32, 32), 10, 10, 10)
    pred = _square((32, 32), 10, 11, 10)      # shifted one pixel right
    sm = SemanticMetrics(2, ignore_index=255, boundary_tolerance_px=1)
    sm.update(pred, gt)
    r = sm.compute()
    assert r["iou"][1] == pytest.approx(90 / 110)
    assert r["iou"][0] == pytest.approx(914 / 934)
    assert r["dice"][1] == pytest.approx(0.9)
    assert r["pixel_accuracy"] == pytest.approx(1004 / 1024)
    assert r["mIoU"] == pytest.approx((90 / 110 + 914 / 934) / 2)
    # ignore the column where they disagree on the left: those 10 GT pixels count nowhere
    gt_i = gt.copy()
    gt_i[10:20, 10] = 255
    sm2 = SemanticMetrics(2, ignore_index=255)
    sm2.update(pred, gt_i)
    r2 = sm2.compute()
    assert r2["labelled_pixels"] == 1014
    assert r2["iou"][1] == pytest.approx(90 / 100)


def test_boundary_f_with_tolerance():
    gt = _square((32, 32), 10, 10, 10)
    pred = _square((32, 32), 10, 11, 10)
    assert boundary_map(gt == 1).sum() == 36
    sm = SemanticMetrics(2, boundary_tolerance_px=1)
    sm.update(pred, gt)
    assert sm.compute()["boundary_f"][1] == pytest.approx(1.0)
    sm0 = SemanticMetrics(2, boundary_tolerance_px=0)
    sm0.update(pred, gt)
    r = sm0.compute()
    # exact coincidence: 9 pixels on the top row + 9 on the bottom row of 36
    assert r["boundary_precision"][1] == pytest.approx(18 / 36)
    assert r["boundary_recall"][1] == pytest.approx(18 / 36)
    assert r["boundary_f"][1] == pytest.approx(0.5)


def test_partials_combine_and_errors_named():
    a, b = SemanticMetrics(3), SemanticMetrics(3)
    rng = np.random.default_rng(0)
    imgs = [(rng.integers(0, 3, (16, 16)), rng.integers(0, 3, (16, 16))) for _ in range(4)]
    whole = SemanticMetrics(3)
    for i, (p, g) in enumerate(imgs):
        (a if i % 2 else b).update(p, g)
        whole.update(p, g)
    total = SemanticMetrics(3)
    total.combine([a.partial(), b.partial()])
    np.testing.assert_array_equal(total.compute()["iou"], whole.compute()["iou"])
    assert total.compute()["mean_boundary_f"] == whole.compute()["mean_boundary_f"]
    with pytest.raises(ValueError, match="img7.png: ground-truth label 5"):
        whole.update(np.zeros((4, 4), int), np.full((4, 4), 5), name="img7.png")


def test_instance_error_types():
    shape = (40, 40)
    g = [_square(shape, 0, 0, 10), _square(shape, 0, 12, 10),   # two touching objects → merged
         _square(shape, 20, 0, 16),                                # split in two halves
         _square(shape, 20, 20, 8),                                # wrong class
         _square(shape, 30, 30, 6)]                                # missed
    g_lab = [1, 1, 1, 1, 2]
    left = np.zeros(shape, np.int32)
    left[20:36, 0:6] = 1                                           # two strips inside the big
    right = np.zeros(shape, np.int32)                              # object, each IoU 96/256
    right[20:36, 10:16] = 1
    p = [_square(shape, 0, 0, 22),                                 # covers both top objects
         left, right,
         _square(shape, 20, 20, 8),
         _square(shape, 0, 30, 5)]                                 # nothing there
    p_lab = [1, 1, 1, 2, 1]
    out = classify_instances(np.stack(g), g_lab, np.stack(p), p_lab, InstanceErrorConfig())
    assert out["gt"] == ["merged", "merged", "split", "wrong_class", "missed"]
    assert out["pred"] == ["merged", "split", "split", "wrong_class", "false_positive"]
    c = InstanceErrorCounter()
    c.update(np.stack(g), g_lab, np.stack(p), p_lab)
    c2 = InstanceErrorCounter()
    c2.update(np.stack(g[:1]), [1], np.stack(g[:1]), [1])
    c.combine([c2.partial()])
    assert c.compute() == {"correct": 1, "wrong_class": 1, "merged": 2, "split": 1, "missed": 1,
                           "false_positive": 1}


def test_seg_post_steps_recorded_and_exact():
    labels = np.zeros((30, 30), np.int32)
    labels[2:12, 2:12] = 1
    labels[6, 6] = 0                          # 1-pixel hole
    labels[20:22, 20:22] = 2                  # 4-pixel speck
    labels[15:25, 2:10] = 2                   # region of class 2 (80 px)
    scores = np.stack([(labels == k).astype(np.float32) * 0.9 + 0.05 for k in range(3)])
    cfg = SegPostConfig(min_region_area=5, max_hole_area=3)
    out, conf, inst, steps = postprocess_semantic(scores, cfg)
    assert [s["step"] for s in steps] == ["argmax", "remove_small_regions", "fill_holes", "components"]
    assert steps[1]["pixels_changed"] == 4 and steps[2]["pixels_changed"] == 1
    assert (out[20:22, 20:22] == 0).all() and out[6, 6] == 1
    assert [(i.class_id, i.area, i.bbox) for i in inst] == [(1, 100, (2, 2, 10, 10)), (2, 80, (2, 15, 8, 10))]
    # confidence = mean winning score over the instance; the filled hole pixel's winner was
    # background at .95, so every pixel contributes .95
    assert inst[0].confidence == pytest.approx(0.95, rel=1e-6)
    scores[1, 2:4, 2:12] = 0.99                # make the top 2 rows surer: mean rises exactly
    _, _, inst, _ = postprocess_semantic(scores, cfg)
    assert inst[0].confidence == pytest.approx((20 * 0.99 + 80 * 0.95) / 100, rel=1e-6)
    # morphology: opening with a 3x3 kernel removes a 1-px line sticking out of the square
    lab = np.zeros((20, 20), np.int32)
    lab[5:15, 5:15] = 1
    lab[10, 15:19] = 1
    o2, _, _, st = postprocess_semantic(lab, SegPostConfig(morphology="open", kernel_size=3, kernel_shape="rect"))
    assert st[0] == {"step": "morphology", "params": {"op": "open", "kernel_size": 3, "kernel_shape": "rect"},
                     "pixels_changed": 4}
    assert o2.sum() == 100


def test_qa_export_files():
    labels = np.zeros((24, 24), np.int32)
    labels[4:12, 4:12] = 3
    image = np.full((24, 24, 3), 100, np.uint8)
    _, conf, inst, steps = postprocess_semantic(labels)
    files = export_qa(17, image, labels, inst, steps, {3: "car"})
    back = cv2.imdecode(np.frombuffer(files["17_mask.png"], np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back, labels)
    ov = cv2.cvtColor(cv2.imdecode(np.frombuffer(files["17_overlay.png"], np.uint8), cv2.IMREAD_COLOR),
                      cv2.COLOR_BGR2RGB)
    assert tuple(ov[4, 4]) == class_color(3)            # boundary pixel: full class colour
    assert tuple(ov[0, 0]) == (100, 100, 100)           # background untouched
    assert tuple(ov[8, 8]) != (100, 100, 100) and tuple(ov[8, 8]) != class_color(3)  # blended inside
    summary = json.loads(files["17.json"])
    assert summary["pixels"] == {"0": 512, "3": 64}
    assert summary["instances_per_class"] == {"3": 1}
    assert summary["instances"][0] == {"class_id": 3, "class": "car", "area": 64, "bbox": [4, 4, 8, 8],
                                       "confidence": None}


def test_write_qa_into_a_run(tmp_path):
    from cvray.evaluate.qa_export import write_qa
    from cvray.io import storage
    from cvray.runs import start_run

    scores = np.zeros((2, 16, 16), np.float32)
    scores[0] = 0.6
    scores[1, 4:10, 4:10] = 0.9
    scores[1, 14, 14] = 0.9                       # 1-pixel speck removed by min_region_area
    with start_run("qa", root=str(tmp_path)) as run:
        summary = write_qa(run, 5, np.zeros((16, 16, 3), np.uint8), scores, SegPostConfig(min_region_area=2))
    assert summary["pixels"] == {"0": 220, "1": 36}
    assert [s["step"] for s in summary["postprocess"]] == ["argmax", "remove_small_regions", "components"]
    assert summary["instances"][0]["confidence"] == pytest.approx(0.9)
    names = sorted(p.rsplit("/", 1)[-1] for p in storage.list_files(run.path("artifacts", "qa")))
    assert names == ["5.json", "5_mask.png", "5_overlay.png"]
