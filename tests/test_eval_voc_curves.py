"""VOC AP50, confusion matrix with background, PR and P/R-vs-confidence curves on hand-built cases."""
from __future__ import annotations

import numpy as np
import pytest

from cvray.evaluate.coco import coco_evaluate
from cvray.evaluate.confusion import ConfusionMatrix
from cvray.evaluate.curves import (confidence_curve_rows, plot_confidence_curves, plot_confusion,
                                   plot_pr_curve, pr_curve_rows)
from cvray.evaluate.matching import collect_classes, match_images, prepare_images
from cvray.evaluate.voc import VocEvaluator, voc_evaluate


def _gt(anns, n_images=2, cats=(1, 2)):
    return {"images": [{"id": i, "width": 100, "height": 100} for i in range(1, n_images + 1)],
            "categories": [{"id": c, "name": f"c{c}"} for c in cats],
            "annotations": [{"id": k + 1, "image_id": im, "category_id": c, "bbox": b,
                             "area": b[2] * b[3], "iscrowd": cr} for k, (im, c, b, cr) in enumerate(anns)]}


def test_voc_ap_all_point_and_11_point():
    gt = _gt([(1, 1, [0, 0, 10, 10], 0), (2, 1, [0, 0, 10, 10], 0)])
    res = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},   # TP
           {"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.8}, # FP
           {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.7}]   # TP
    # recall .5,.5,1; precision 1,.5,2/3 → envelope 1 then 2/3
    r = voc_evaluate(gt, res)
    assert r.per_class_ap[1] == pytest.approx(0.5 * 1 + 0.5 * (2 / 3), abs=1e-12)
    assert np.isnan(r.per_class_ap[2]) and r.mAP50 == pytest.approx(5 / 6, abs=1e-12)
    r07 = voc_evaluate(gt, res, use_07_metric=True)
    assert r07.per_class_ap[1] == pytest.approx((6 * 1 + 5 * (2 / 3)) / 11, abs=1e-12)
    ev = VocEvaluator(gt)
    ev.process(res[:1])
    other = VocEvaluator(gt)
    other.process(res[1:])
    ev.combine([other.partial()])
    assert ev.evaluate().mAP50 == r.mAP50


def test_voc_rule_differs_from_coco_when_best_gt_taken():
    """Second detection's best GT is taken: VOC says FP, COCO matches the next free GT."""
    gt = _gt([(1, 1, [0, 0, 10, 10], 0), (1, 1, [4, 0, 10, 10], 0)], n_images=1)
    res = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
           {"image_id": 1, "category_id": 1, "bbox": [1, 0, 10, 10], "score": 0.8}]
    # det2: IoU 9/11 with GT1 (taken), IoU 7/13 with GT2
    assert voc_evaluate(gt, res).per_class_ap[1] == pytest.approx(0.5, abs=1e-12)
    assert coco_evaluate(gt, res).per_class_ap50[1] == pytest.approx(1.0, abs=1e-12)


def test_voc_difficult_ignored_and_strict_threshold():
    gt = _gt([(1, 1, [0, 0, 10, 10], 0), (1, 1, [50, 50, 10, 10], 1)], n_images=1)
    res = [{"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.95},  # on difficult
           {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]
    assert voc_evaluate(gt, res).per_class_ap[1] == pytest.approx(1.0)
    # IoU exactly 0.5 is not a match in VOC (strictly greater)
    res = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 5], "score": 0.9}]
    assert voc_evaluate(gt, res).per_class_ap[1] == 0.0
    assert coco_evaluate(gt, res).per_class_ap50[1] == pytest.approx(1.0)


def test_confusion_matrix_with_background():
    cm = ConfusionMatrix([1, 2], iou_threshold=0.5, score_threshold=0.3)
    gt_boxes = [[0, 0, 10, 10], [20, 20, 10, 10], [60, 60, 10, 10], [80, 0, 10, 10]]
    gt_labels = [1, 2, 2, 1]
    crowd = [False, False, False, True]
    dt_boxes = [[0, 0, 10, 10], [20, 20, 10, 10], [40, 40, 5, 5], [60, 60, 10, 10], [81, 1, 5, 5]]
    dt_scores = [0.9, 0.8, 0.7, 0.2, 0.9]   # 4th below score threshold; 5th inside crowd
    dt_labels = [1, 1, 2, 2, 1]
    cm.update(gt_boxes, gt_labels, dt_boxes, dt_scores, dt_labels, crowd)
    expected = np.array([[1, 0, 0],    # true 1: correct
                         [1, 0, 1],    # true 2: called 1 once, missed once
                         [0, 1, 0]])   # background: one false alarm of class 2
    np.testing.assert_array_equal(cm.compute(), expected)
    other = ConfusionMatrix([1, 2])
    other.update([[0, 0, 5, 5]], [1], np.zeros((0, 4)), [], [])
    cm.combine([other.partial()])
    assert cm.compute()[0, 2] == 1
    assert cm.labels == ["1", "2", "background"]
    png = plot_confusion(cm.compute(), cm.labels)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_pr_rows_integrate_to_ap_and_confidence_curves():
    gt = _gt([(1, 1, [0, 0, 10, 10], 0), (2, 1, [0, 0, 10, 10], 0)])
    res = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
           {"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.8},
           {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.7}]
    out = coco_evaluate(gt, res)
    rows = pr_curve_rows(out, 0.5)
    assert {r["category_id"] for r in rows} == {1} and len(rows) == 101
    assert np.mean([r["precision"] for r in rows]) == pytest.approx(out.per_class_ap50[1], abs=1e-12)
    images = prepare_images(gt, res)
    classes = collect_classes(images, match_images(images, 0.5), [1, 2])
    crow = confidence_curve_rows(classes, np.array([0.0, 0.75, 0.85, 0.95]))
    c1 = {r["threshold"]: r for r in crow if r["category_id"] == 1}
    assert (c1[0.0]["precision"], c1[0.0]["recall"]) == (pytest.approx(2 / 3), 1.0)
    assert (c1[0.75]["precision"], c1[0.75]["recall"]) == (0.5, 0.5)
    assert (c1[0.85]["precision"], c1[0.85]["recall"]) == (1.0, 0.5)
    assert c1[0.85]["f1"] == pytest.approx(2 / 3)
    assert np.isnan(c1[0.95]["precision"]) and c1[0.95]["recall"] == 0.0
    assert plot_pr_curve(rows, "c1")[:4] == b"\x89PNG"
    assert plot_confidence_curves([r for r in crow if r["category_id"] == -1], "all")[:4] == b"\x89PNG"
