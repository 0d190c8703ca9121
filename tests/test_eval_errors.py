"""TIDE-style error buckets and their dAP on a hand-built case; matching vs the COCO oracle."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cvray.evaluate.coco import coco_evaluate
from cvray.evaluate.errors import ERROR_TYPES, ErrorEvaluator, analyze_errors
from cvray.evaluate.matching import coco_interp_ap, collect_classes, match_images, prepare_images


def _ann(i, img, cat, box):
    return {"id": i, "image_id": img, "category_id": cat, "bbox": box, "area": box[2] * box[3], "iscrowd": 0}


def _scene():
    gt = {"images": [{"id": i, "width": 100, "height": 100} for i in range(1, 6)],
          "categories": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}],
          "annotations": [
              _ann(1, 1, 1, [0, 0, 10, 10]),    # A: found (TP) + a duplicate
              _ann(2, 2, 1, [0, 0, 10, 10]),    # B: localization error (IoU .4)
              _ann(3, 3, 2, [0, 0, 10, 10]),    # C: classification error
              _ann(4, 4, 2, [50, 50, 10, 10]),  # D: missed (small)
              _ann(5, 5, 2, [0, 0, 10, 10]),    # E: target of a "both" error → missed
              _ann(6, 5, 1, [50, 50, 40, 40]),  # F: missed (medium)
          ]}
    res = [
        {"image_id": 4, "category_id": 1, "bbox": [80, 80, 5, 5], "score": 0.95},   # background
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.90},   # TP
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.80},   # duplicate
        {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 4], "score": 0.70},    # localization
        {"image_id": 3, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.60},   # classification
        {"image_id": 5, "category_id": 1, "bbox": [0, 0, 10, 3], "score": 0.50},    # both
    ]
    return gt, res


def test_buckets_counts_and_dap_hand_computed():
    gt, res = _scene()
    a = analyze_errors(gt, res)
    # base: class 1 = F,T,F,F,F,F over 3 GT → P=.5 up to R=1/3 (34 of 101 points); class 2 = 0
    assert a.ap50 == pytest.approx(17 / 101 / 2, abs=1e-12)
    summary = {r["type"]: r for r in a.summary}
    assert [r["type"] for r in a.summary] == list(ERROR_TYPES)
    assert {t: summary[t]["count"] for t in ERROR_TYPES} == {
        "localization": 1, "classification": 1, "both": 1, "duplicate": 1, "background": 1, "missed": 3}
    expected_dap = {
        "background": 17 / 202,       # TP first: P=1 up to R=1/3
        "localization": 16.5 / 202,   # B found at rank 4: P=.5 up to R=2/3 (67 points)
        "classification": 17 / 101,   # class 2 gains C at P=1, R=1/3; class 1 unchanged
        "duplicate": 0.0, "both": 0.0,  # they rank below the last TP
        "missed": 8.5 / 202,          # class 1 npos 3→2 (R=1/2, 51 points); class 2 stays 0
    }
    for t, v in expected_dap.items():
        assert summary[t]["dAP"] == pytest.approx(v, abs=1e-12), t
    by_res = {r["result_index"]: r["type"] for r in a.errors if r["result_index"] is not None}
    assert by_res == {0: "background", 2: "duplicate", 3: "localization", 4: "classification", 5: "both"}
    missed = sorted(r["gt_id"] for r in a.errors if r["type"] == "missed")
    assert missed == [4, 5, 6]
    size = {(r["size"], r["type"]): r for r in a.per_size}
    assert size["small", "missed"]["count"] == 2 and size["small", "missed"]["dAP"] == pytest.approx(0.0)
    assert size["medium", "missed"]["count"] == 1
    assert size["medium", "missed"]["dAP"] == pytest.approx(8.5 / 202, abs=1e-12)
    cls = {(r["category_id"], r["type"]): r for r in a.per_class}
    assert cls[2, "classification"]["count"] == 0  # counted under the predicted class
    assert cls[1, "classification"]["count"] == 1
    assert cls[2, "classification"]["dAP"] == pytest.approx(34 / 101, abs=1e-12)
    assert cls[1, "background"]["dAP"] == pytest.approx(17 / 101, abs=1e-12)


def test_crowd_matches_are_not_errors():
    gt, res = _scene()
    gt["annotations"].append({**_ann(7, 4, 1, [78, 78, 10, 10]), "iscrowd": 1})
    a = analyze_errors(gt, res)
    assert "background" not in {r["type"] for r in a.errors}  # the .95 box sits in a crowd region
    assert a.ap50 == pytest.approx(34 / 101 / 2, abs=1e-12)


def test_evaluator_protocol_combines_partials():
    gt, res = _scene()
    parts = [ErrorEvaluator(gt) for _ in range(2)]
    parts[0].process(res[:3])
    parts[1].process(res[3:])
    ev = ErrorEvaluator(gt)
    ev.combine(p.partial() for p in parts)
    assert ev.evaluate().summary == analyze_errors(gt, res).summary


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_matching_reproduces_coco_ap50_per_class(shared_dir, iou_type):
    ref = shared_dir / "refdata" / "coco"
    gt = json.loads((ref / "instances_val2014_100.json").read_text())
    res = json.loads((ref / f"instances_val2014_fake{iou_type}100_results.json").read_text())
    cats = sorted(c["id"] for c in gt["categories"])
    images = prepare_images(gt, res, iou_type)
    cd = collect_classes(images, match_images(images, 0.5), cats)
    ours = {c: coco_interp_ap(v.scores, v.tp, v.npos) for c, v in cd.items()}
    coco = coco_evaluate(gt, res, iou_type)
    for c in cats:
        if np.isnan(coco.per_class_ap50[c]):
            assert np.isnan(ours[c])
        else:
            assert ours[c] == pytest.approx(coco.per_class_ap50[c], abs=1e-12)
    a = analyze_errors(gt, res, iou_type)
    assert a.ap50 == pytest.approx(coco.stats["AP50"], abs=1e-12)
    n_fp = sum(1 for r in a.errors if r["type"] != "missed")
    n_dets = sum(len(im.dt_labels) for im in images)
    n_ign = n_dets - a.true_positives - n_fp
    assert n_ign >= 0  # every kept detection is a TP, an error, or absorbed by a crowd region
