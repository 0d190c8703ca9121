"""COCO AP through faster-coco-eval against the shared pycocotools oracle and hand-built cases."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cvray.evaluate.coco import STAT_KEYS, CocoEvalError, CocoEvaluator, coco_evaluate


@pytest.fixture(scope="module")
def coco_ref(shared_dir):
    ref = shared_dir / "refdata" / "coco"
    gt = json.loads((ref / "instances_val2014_100.json").read_text())
    expected = json.loads((ref / "expected_stats.json").read_text())
    res = {t: json.loads((ref / f"instances_val2014_fake{t}100_results.json").read_text())
           for t in ("bbox", "segm")}
    return gt, res, expected


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_reproduces_oracle_to_1e9(coco_ref, iou_type):
    gt, res, expected = coco_ref
    out = coco_evaluate(gt, res[iou_type], iou_type)
    assert list(out.stats) == list(expected["keys"]) == list(STAT_KEYS)
    got = np.array([out.stats[k] for k in STAT_KEYS])
    np.testing.assert_allclose(got, expected[iou_type], rtol=0, atol=1e-9)


def test_partials_combine_to_same_stats(coco_ref):
    gt, res, expected = coco_ref
    rs = res["bbox"]
    workers = [CocoEvaluator(gt, "bbox") for _ in range(3)]
    # contiguous shards: detections with tied scores keep their order, as in one process
    bounds = np.linspace(0, len(rs), 4).astype(int)
    for w, a, b in zip(workers, bounds[:-1], bounds[1:]):
        w.process(rs[a:b])
    main = CocoEvaluator(gt, "bbox")
    main.combine(w.partial() for w in workers)
    got = np.array([main.evaluate().stats[k] for k in STAT_KEYS])
    np.testing.assert_allclose(got, expected["bbox"], rtol=0, atol=1e-9)
    # the caller's dicts are never mutated by loadRes
    assert "id" not in rs[0] and "area" not in rs[0]


def test_per_class_ap_matches_pycocotools(coco_ref):
    """Per-class AP equals pycocotools' precision array averaged per category."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    import copy
    import contextlib
    import io

    gt, res, _ = coco_ref
    out = coco_evaluate(gt, res["bbox"], "bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(res["bbox"]))
        e = COCOeval(cg, cd, "bbox")
        e.evaluate()
        e.accumulate()
    for k, c in enumerate(e.params.catIds):
        p = e.eval["precision"][:, :, k, 0, -1]
        ref = float(np.mean(p[p > -1])) if (p > -1).any() else float("nan")
        if np.isnan(ref):
            assert np.isnan(out.per_class_ap[c])
        else:
            assert abs(out.per_class_ap[c] - ref) < 1e-12


def _tiny_gt():
    return {
        "images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 50, 40, 40], "area": 1600, "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 2, "bbox": [0, 0, 40, 40], "area": 1600, "iscrowd": 0},
        ],
    }


def test_hand_built_ap():
    """Class 1: TP(0.9), FP(0.8), missed -> 101-pt AP50 = 0.5 (recall stops at 0.5 with P=1).
    Class 2: one exact TP -> AP 1. mean AP50 = 0.75."""
    gt = _tiny_gt()
    res = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [60, 60, 30, 30], "score": 0.8},
        {"image_id": 2, "category_id": 2, "bbox": [0, 0, 40, 40], "score": 0.7},
    ]
    out = coco_evaluate(gt, res, "bbox")
    # recall points 0..0.5 inclusive (51 of 101) have precision 1
    assert out.per_class_ap50[1] == pytest.approx(51 / 101, abs=1e-12)
    assert out.per_class_ap50[2] == pytest.approx(1.0, abs=1e-12)
    assert out.stats["AP50"] == pytest.approx((51 / 101 + 1) / 2, abs=1e-12)
    assert out.stats["AR100"] == pytest.approx(0.75, abs=1e-12)


def test_bad_prediction_is_named():
    gt = _tiny_gt()
    with pytest.raises(CocoEvalError, match="image_id=99"):
        coco_evaluate(gt, [{"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}])
    with pytest.raises(CocoEvalError, match="lacks"):
        coco_evaluate(gt, [{"image_id": 1, "category_id": 1, "score": 1.0}])
