"""Calibration cores on hand-built cases with known answers: matching, ECE / D-ECE / LaECE,
calibrators (temperature, Platt, isotonic, per class) and reliability diagrams."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cvray.calibrate.calibrators import (IsotonicCalibrator, PerClassCalibrator, PlattScaling, TemperatureScaling,
                                         fit_calibrator, load_calibrator)
from cvray.calibrate.matching import MatchedDetections, match_detections
from cvray.calibrate.metrics import calibration_report, dece, ece, laece


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ---------------------------------------------------------------- matching

def _tiny_coco():
    gt = {"images": [{"id": 1, "width": 100, "height": 50}, {"id": 2, "width": 200, "height": 100}],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
              {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 20, 20, 20], "area": 400, "iscrowd": 0},
              {"id": 3, "image_id": 2, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
              {"id": 4, "image_id": 2, "category_id": 1, "bbox": [100, 0, 100, 100], "area": 10000, "iscrowd": 1}]}
    res = [
        # listed first but image 2: rows come out in image-id order
        {"image_id": 2, "category_id": 1, "bbox": [10, 10, 40, 20], "score": 0.95},  # IoU 800/1600 = 0.5 -> TP (>=)
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},     # TP, IoU 1
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 8], "score": 0.8},      # duplicate of GT 1 -> FP
        {"image_id": 1, "category_id": 1, "bbox": [50, 20, 20, 20], "score": 0.7},   # on GT 2 but class 1 -> FP
        {"image_id": 1, "category_id": 2, "bbox": [52, 20, 20, 20], "score": 0.6},   # TP, IoU 360/440
        {"image_id": 2, "category_id": 1, "bbox": [120, 10, 50, 50], "score": 0.5},  # inside crowd -> ignored
        {"image_id": 2, "category_id": 2, "bbox": [0, 0, 5, 5], "score": 0.3},       # no class-2 GT -> FP
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.04},    # below score_thr
    ]
    return gt, res


def test_matching_exact_arrays():
    gt, res = _tiny_coco()
    m = match_detections(gt, res, iou_thr=0.5, score_thr=0.05)
    np.testing.assert_array_equal(m.scores, [0.9, 0.8, 0.7, 0.6, 0.95, 0.3])
    np.testing.assert_array_equal(m.labels, [1, 1, 1, 2, 1, 2])
    np.testing.assert_array_equal(m.tp, [True, False, False, True, True, False])
    np.testing.assert_allclose(m.ious, [1.0, 0.0, 0.0, 360 / 440, 0.5, 0.0], atol=1e-12)
    np.testing.assert_array_equal(m.image_ids, [1, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(m.image_sizes, [[100, 50]] * 4 + [[200, 100]] * 2)
    np.testing.assert_array_equal(m.boxes[3], [52, 20, 20, 20])   # xywh, as in the results
    assert (m.iou_thr, m.score_thr) == (0.5, 0.05)
    c2 = m.for_class(2)
    assert len(c2) == 2 and c2.tp.tolist() == [True, False] and c2.iou_thr == 0.5
    assert m.classes == [1, 2]
    # without the score threshold the 0.04 duplicate is one more FP; at IoU 0.6 the 0.5-IoU TP is an FP
    assert match_detections(gt, res).tp.tolist() == [True, False, False, True, False, True, False]
    assert match_detections(gt, res, iou_thr=0.6, score_thr=0.05).tp.tolist()[4] is False
    both = MatchedDetections.concat([m.select(m.image_ids == 1), m.select(m.image_ids == 2)])
    np.testing.assert_array_equal(both.ious, m.ious)


def test_matching_rejects_bad_input():
    gt, res = _tiny_coco()
    with pytest.raises(ValueError, match="image ids not in the ground truth"):
        match_detections(gt, res + [{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}])
    with pytest.raises(ValueError, match="iou_thr"):
        match_detections(gt, res, iou_thr=0.0)


# ---------------------------------------------------------------- ECE / D-ECE

def test_ece_hand_computed():
    # 2 bins [0, .5) and [.5, 1]:
    #   bin 0: scores .2 .2 .3 .3 (sum 1.0), TPs 1 1 0 0 (2)   -> |2 - 1.0| = 1.0
    #   bin 1: scores .6 .7 .8 .9 .9 .9 (sum 4.8), TPs 4       -> |4 - 4.8| = 0.8
    #   ECE = sum_b |B_b|/N |prec_b - conf_b| = (1.0 + 0.8) / 10 = 0.18
    s = [0.2, 0.2, 0.3, 0.3, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9]
    t = [1, 1, 0, 0, 1, 1, 1, 1, 0, 0]
    r = ece(s, t, bins=2, iou_thr=0.5, score_thr=0.0)
    assert r.value == pytest.approx(0.18, abs=1e-12)
    np.testing.assert_array_equal(r.counts, [4, 6])
    np.testing.assert_allclose(r.accuracy, [0.5, 4 / 6])
    np.testing.assert_allclose(r.confidence, [0.25, 0.8])
    assert r.bins == {"confidence": 2} and r.n == 10 and r.iou_thr == 0.5
    json.dumps(r.to_dict())


def test_ece_calibrated_vs_overconfident():
    rng = np.random.default_rng(0)
    s = rng.uniform(size=200_000)
    assert ece(s, rng.uniform(size=s.size) < s).value < 0.02
    # tp ~ Bernoulli(s^2): expected ECE ~ E[s - s^2] = 1/6
    assert ece(s, rng.uniform(size=s.size) < s ** 2).value > 0.1


def test_dece_one_box_bin_equals_ece():
    rng = np.random.default_rng(1)
    n = 5000
    s, t = rng.uniform(size=n), rng.uniform(size=n) < 0.5
    boxes = np.column_stack([rng.uniform(0, 80, n), rng.uniform(0, 40, n), rng.uniform(1, 20, n), rng.uniform(1, 10, n)])
    wh = np.tile([100.0, 50.0], (n, 1))
    assert dece(s, t, boxes, wh, bins=(7, 1, 1, 1, 1)).value == ece(s, t, bins=7).value
    assert dece(s, t, boxes, wh, bins={"confidence": 7, "cx": 1, "cy": 1, "w": 1, "h": 1}).value \
        == ece(s, t, bins=7).value


def test_dece_sees_position_dependent_miscalibration():
    # all scores 0.5; boxes in the left half of the image are all TPs, right half all FPs.
    # ECE (1 bin): precision 0.5 = confidence 0.5 -> 0. D-ECE with 2 cx bins: |1-.5|/2 + |0-.5|/2 = 0.5
    s = np.full(4, 0.5)
    t = [1, 1, 0, 0]
    boxes = [[0, 0, 10, 10], [20, 20, 10, 10], [60, 0, 10, 10], [80, 20, 10, 10]]
    wh = [[100, 50]] * 4
    assert ece(s, t, bins=1).value == 0.0
    r = dece(s, t, boxes, wh, bins={"confidence": 1, "cx": 2, "cy": 1, "w": 1, "h": 1})
    assert r.value == pytest.approx(0.5) and r.nonempty_bins == 2
    assert dece(s, t, boxes, wh).value > ece(s, t).value


# ---------------------------------------------------------------- LaECE

def test_laece_hand_computed():
    # 2 bins. class 1: bin 1 scores .8 .8 TPs IoU .9 .7 -> target .8, gap 0; bin 0 score .2 FP -> gap .2
    #   LaECE_1 = 2/3 * 0 + 1/3 * .2 = 1/15
    # class 2: bin 1 scores .6 .6, one TP IoU .5 -> target (1/2) * .5 = .25, gap .35 -> LaECE_2 = .35
    # LaECE = (1/15 + 7/20) / 2 = 5/24
    s = [0.8, 0.8, 0.2, 0.6, 0.6]
    t = [1, 1, 0, 1, 0]
    iou = [0.9, 0.7, 0.0, 0.5, 0.0]
    lab = [1, 1, 1, 2, 2]
    r = laece(s, t, iou, lab, bins=2, iou_thr=0.5)
    assert r.value == pytest.approx(5 / 24, abs=1e-12)
    assert r.per_class[1].value == pytest.approx(1 / 15) and r.per_class[2].value == pytest.approx(0.35)
    assert r.iou_thr == 0.5 and r.target == "precision × IoU"
    # with every IoU = 1 the target is precision: class 1 gaps .2 (bin 1) and .2 (bin 0) -> .2;
    # class 2 |.5 - .6| = .1 -> mean .15, the class-averaged ECE
    r1 = laece(s, t, np.ones(5), lab, bins=2)
    assert r1.value == pytest.approx(0.15, abs=1e-12)
    per_ece = ece(s, t, bins=2, labels=lab).per_class
    assert r1.value == pytest.approx(np.mean([p.value for p in per_ece.values()]), abs=1e-15)


def test_laece_not_gamed_by_thresholding():
    # Oksuz et al. 2023: a precision-only error can be made perfect by thresholding and ignores
    # localisation. 10 detections at .9 (9 TPs, all IoU .6) and 10 FPs at .1.
    #   ECE: |9 - 9| + |0 - 1| over 20 = .05; after keeping scores >= .5 -> 0 (looks perfect).
    #   LaECE: |5.4 - 9| + |0 - 1| over 20 = .23; after thresholding |5.4 - 9| / 10 = .36 (not improved).
    s = np.r_[np.full(10, 0.9), np.full(10, 0.1)]
    t = np.r_[np.ones(9), 0, np.zeros(10)].astype(bool)
    iou = np.where(t, 0.6, 0.0)
    lab = np.ones(20, int)
    boxes, wh = np.tile([10, 10, 20, 20], (20, 1)), np.tile([100, 100], (20, 1))
    keep = s >= 0.5
    assert ece(s, t).value == pytest.approx(0.05) and ece(s[keep], t[keep]).value == pytest.approx(0.0)
    assert dece(s[keep], t[keep], boxes[keep], wh[keep]).value < dece(s, t, boxes, wh).value
    before, after = laece(s, t, iou, lab).value, laece(s[keep], t[keep], iou[keep], lab[keep]).value
    assert before == pytest.approx(0.23) and after == pytest.approx(0.36)
    # and ECE is blind to box quality where LaECE is not
    assert laece(s, t, np.where(t, 1.0, 0.0), lab).value < before


def test_calibration_report_records_thresholds():
    gt, res = _tiny_coco()
    m = match_detections(gt, res, iou_thr=0.5, score_thr=0.05)
    rep = calibration_report(m)
    assert set(rep) == {"ece", "dece", "laece"}
    for r in rep.values():
        assert (r.iou_thr, r.score_thr, r.n) == (0.5, 0.05, 6) and set(r.per_class) == {1, 2}
    assert rep["dece"].bins == {"confidence": 5, "cx": 5, "cy": 5, "w": 5, "h": 5}
    assert rep["laece"].bins == {"confidence": 25}
    json.dumps({k: r.to_dict() for k, r in rep.items()})


# ---------------------------------------------------------------- calibrators

def _overconfident(rng, n):
    s = rng.uniform(size=n)
    return s, rng.uniform(size=n) < s ** 2


def test_temperature_recovers_known_temperature():
    # the model's logits are T_true times the true ones: scores = sigmoid(T z), tp ~ Bernoulli(sigmoid(z))
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, 60_000)
    for t_true in (2.0, 0.5):
        s = _sigmoid(t_true * z)
        y = rng.uniform(size=z.size) < _sigmoid(z)
        assert TemperatureScaling().fit(s, y).temperature == pytest.approx(t_true, rel=0.05)


def test_platt_recovers_known_parameters():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, 60_000)
    y = rng.uniform(size=z.size) < _sigmoid(0.6 * z - 0.5)
    p = PlattScaling().fit(_sigmoid(z), y)
    assert p.a == pytest.approx(0.6, abs=0.03) and p.b == pytest.approx(-0.5, abs=0.05)


def _logit_overconfident(rng, n, t_true=3.0):
    # logits t_true times too large: scores = sigmoid(t_true z), tp ~ Bernoulli(sigmoid(z))
    z = rng.normal(0, 1.5, n)
    return _sigmoid(t_true * z), rng.uniform(size=n) < _sigmoid(z)


def test_calibrators_monotone_roundtrip_and_val_to_test():
    rng = np.random.default_rng(4)
    vs, vy = _logit_overconfident(rng, 20_000)   # validation split: fit here only
    ts, ty = _logit_overconfident(rng, 20_000)   # test split: report here
    before = ece(ts, ty).value
    assert before > 0.1
    grid = np.linspace(0, 1, 2001)
    for kind in ("temperature", "platt", "isotonic"):
        cal = fit_calibrator(kind, vs, vy)
        assert (np.diff(cal(grid)) >= 0).all(), kind                      # ranking preserved
        out = cal(ts)
        assert ((out >= 0) & (out <= 1)).all()
        after = ece(out, ty).value
        assert after < 0.02, (kind, before, after)
        back = load_calibrator(json.loads(json.dumps(cal.to_dict())))
        assert type(back) is type(cal) and np.array_equal(back(ts), out)
    # scores too high everywhere (tp ~ Bernoulli(s^2)) need a bias, not a temperature:
    # Platt and isotonic fix it on held-out data
    vs, vy = _overconfident(rng, 20_000)
    ts, ty = _overconfident(rng, 20_000)
    assert ece(ts, ty).value > 0.1
    iso = fit_calibrator("isotonic", vs, vy)
    assert isinstance(iso, IsotonicCalibrator) and len(iso.x) < 400   # only block ends stored
    assert ece(iso(ts), ty).value < 0.03
    assert ece(fit_calibrator("platt", vs, vy)(ts), ty).value < 0.05


def test_per_class_calibrator_and_errors():
    rng = np.random.default_rng(5)
    s = rng.uniform(size=4000)
    lab = np.r_[np.ones(2000, int), np.full(1990, 2), np.full(10, 3)]
    y = np.where(lab == 1, rng.uniform(size=s.size) < s ** 3, rng.uniform(size=s.size) < s)
    cal = fit_calibrator("platt", s, y, labels=lab, min_per_class=50)
    assert isinstance(cal, PerClassCalibrator) and sorted(cal.calibrators) == [1, 2]   # class 3 -> fallback
    assert cal.calibrators[1].a > cal.calibrators[2].a
    back = load_calibrator(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_array_equal(back(s, lab), cal(s, lab))
    np.testing.assert_array_equal(cal(s[lab == 3], lab[lab == 3]), cal.fallback(s[lab == 3]))
    with pytest.raises(ValueError, match="labels"):
        cal(s)
    with pytest.raises(ValueError, match="unknown calibrator kind"):
        fit_calibrator("beta", s, y)
    with pytest.raises(ValueError, match="unknown kind"):
        load_calibrator({"kind": "beta"})
    with pytest.raises(ValueError, match="scores"):
        TemperatureScaling().fit([1.5], [1])
    with pytest.raises(ValueError, match="not fitted"):
        IsotonicCalibrator()(s)


# ---------------------------------------------------------------- diagrams

def test_reliability_diagrams_write_png(tmp_path):
    from cvray.calibrate.diagrams import per_class_reliability_diagram, reliability_diagram

    rng = np.random.default_rng(6)
    s, y = _overconfident(rng, 3000)
    lab = rng.integers(1, 4, s.size)
    r = ece(s, y, labels=lab, iou_thr=0.5, score_thr=0.05)
    for p in (reliability_diagram(r, tmp_path / "overall.png", "val"),
              per_class_reliability_diagram(r, tmp_path / "per_class.png", class_names={1: "car"})):
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    with pytest.raises(ValueError, match="per-class"):
        per_class_reliability_diagram(ece(s, y), tmp_path / "x.png")
