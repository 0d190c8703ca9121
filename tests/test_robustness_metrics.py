"""P / mPC / rPC on hand-built tables (the benchmark's definitions, Michaelis et al. 2019)."""
from __future__ import annotations

import math

import pytest

from cvray.robustness.corruptions import BENCHMARK, EXTRAS, FAMILIES, HOLDOUT
from cvray.robustness.metrics import robustness_summary
from cvray.robustness.records import CLEAN


def _rows(value, corruptions=BENCHMARK, severities=(1, 2, 3, 4, 5), clean=0.4, model="m"):
    rows = [{"model": model, "corruption": CLEAN, "severity": 0, "bbox_AP": clean, "segm_AP": clean / 2}]
    for i, c in enumerate(corruptions):
        for s in severities:
            v = value(i, s)
            rows.append({"model": model, "corruption": c, "severity": s, "bbox_AP": v, "segm_AP": v / 2})
    return rows


def test_mpc_is_the_mean_over_corruptions_and_severities():
    value = lambda i, s: 0.4 - 0.05 * s - 0.001 * i  # noqa: E731
    out = robustness_summary(_rows(value), benchmark=BENCHMARK, families=FAMILIES)["m"]
    mpc = sum(value(i, s) for i in range(15) for s in range(1, 6)) / 75
    assert out["bbox_AP"]["P"] == 0.4
    assert out["bbox_AP"]["mPC"] == pytest.approx(mpc, abs=1e-12)
    assert out["bbox_AP"]["rPC"] == pytest.approx(mpc / 0.4, abs=1e-12)
    assert out["segm_AP"]["mPC"] == pytest.approx(mpc / 2, abs=1e-12)
    assert out["bbox_AP"]["complete"] and out["bbox_AP"]["benchmark_cells"] == 75
    for s in range(1, 6):
        assert out["bbox_AP"]["per_severity"][s] == pytest.approx(sum(value(i, s) for i in range(15)) / 15)
    noise = [BENCHMARK.index(c) for c in FAMILIES["noise"]]
    assert out["bbox_AP"]["per_family"]["noise"] == pytest.approx(
        sum(value(i, s) for i in noise for s in range(1, 6)) / (5 * len(noise)))


def test_holdout_and_extras_never_enter_mpc():
    base = _rows(lambda i, s: 0.2)
    extra = _rows(lambda i, s: 0.0, corruptions=(*HOLDOUT, *EXTRAS))[1:]  # a model ruined by them
    out = robustness_summary(base + extra, benchmark=BENCHMARK, holdout=HOLDOUT, extras=EXTRAS,
                             families=FAMILIES)["m"]["bbox_AP"]
    assert out["mPC"] == pytest.approx(0.2) and out["rPC"] == pytest.approx(0.5)
    assert out["holdout"]["mPC"] == 0.0 and set(out["holdout"]["per_corruption"]) == set(HOLDOUT)
    assert out["extras"]["mPC"] == 0.0


def test_mmdetection_reference_point_arithmetic():
    # MMDetection's Mask R-CNN R50-FPN 1x: box P 37.3, mPC 18.7 -> rPC 50.1 %
    out = robustness_summary(_rows(lambda i, s: 18.7, clean=37.3), benchmark=BENCHMARK)["m"]["bbox_AP"]
    assert round(100 * out["rPC"], 1) == 50.1


def test_incomplete_grid_and_missing_clean_are_flagged():
    rows = _rows(lambda i, s: 0.1, corruptions=BENCHMARK[:3], severities=(1, 5))
    out = robustness_summary(rows, benchmark=BENCHMARK)["m"]["bbox_AP"]
    assert not out["complete"] and out["benchmark_cells"] == 6
    no_clean = robustness_summary(rows[1:], benchmark=BENCHMARK)["m"]["bbox_AP"]
    assert no_clean["P"] is None and no_clean["rPC"] is None
    zero = robustness_summary(_rows(lambda i, s: 0.0, clean=0.0), benchmark=BENCHMARK)["m"]["bbox_AP"]
    assert zero["rPC"] is None  # undefined at P = 0, never a division by zero


def test_models_are_summarised_apart_and_box_only_models_have_no_mask_metric():
    rows = _rows(lambda i, s: 0.3, model="a") + [
        {**r, "segm_AP": None} for r in _rows(lambda i, s: 0.1, model="b", clean=0.2)]
    out = robustness_summary(rows, benchmark=BENCHMARK)
    assert out["a"]["bbox_AP"]["mPC"] == pytest.approx(0.3) and out["b"]["bbox_AP"]["mPC"] == pytest.approx(0.1)
    assert "segm_AP" not in out["b"] and math.isclose(out["b"]["bbox_AP"]["rPC"], 0.5)
