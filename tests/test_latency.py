"""``cvray latency``: percentiles from a known distribution, batch latency vs throughput, the
budget verdict, and the sheet end to end (one Ray worker, then in-process)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cvray.io import storage
from cvray.latency.timing import StageClock, budget_verdict, stage_stats

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cvray.cli.main"]


def test_percentiles_from_a_known_distribution():
    """Lognormal stage times (median 20 ms): the rows are numpy's percentiles of the samples, and
    with 20000 samples within 3 % of the distribution's own quantiles."""
    rng = np.random.default_rng(0)
    mu, sigma = np.log(0.020), 0.5
    x = rng.lognormal(mu, sigma, 20000)
    clock = StageClock()
    for v in x:
        clock.add("inference", float(v))
    (row, total) = stage_stats(clock)
    assert row["stage"] == "inference" and row["n"] == 20000
    for p in (50, 95, 99):
        assert row[f"p{p}_ms"] == pytest.approx(1e3 * np.percentile(x, p), rel=1e-12)
        true = 1e3 * np.exp(mu + sigma * stats.norm.ppf(p / 100))
        assert row[f"p{p}_ms"] == pytest.approx(true, rel=0.03), p
    assert row["fps"] == pytest.approx(1 / x.mean(), rel=1e-9)
    assert total["p95_ms"] == pytest.approx(row["p95_ms"], rel=1e-12)  # one stage: total = it


def test_a_batch_is_every_images_latency_but_counted_once_for_throughput():
    clock = StageClock()
    clock.add("inference", 0.4, images=4)  # one batch of 4 in 0.4 s
    (row, _) = stage_stats(clock)
    assert row["n"] == 4 and row["p50_ms"] == pytest.approx(400) and row["fps"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="at least one image"):
        clock.add("decode", 0.1, images=0)


def test_total_is_the_per_image_sum_and_the_budget_names_what_breaks_it():
    clock = StageClock()
    for a, b in [(0.010, 0.050), (0.030, 0.010), (0.020, 0.020)]:
        clock.add("decode", a)
        clock.add("inference", b)
    rows = stage_stats(clock)
    total = rows[-1]
    assert total["stage"] == "total"
    assert total["p50_ms"] == pytest.approx(40.0)  # per-image sums 60, 40, 40 -- not p50 + p50 (40)
    assert total["p99_ms"] == pytest.approx(np.percentile([60, 40, 40], 99))
    v = budget_verdict(rows, 50.0)
    assert v["met"] is False and v["breaks"] == "inference" and v["total_ms"] == total["p95_ms"]
    assert budget_verdict(rows, 100.0) == {**budget_verdict(rows, 100.0), "met": True, "breaks": None}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("latency")
    p = subprocess.run([*CLI, "data", "synth", "--out", str(tmp / "ds"), "--images", "8", "--videos", "0",
                        "synth.image_size=[96,128]", "--root", str(tmp / "r"), "--json"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return tmp / "ds" / "coco" / "annotations" / "instances_train.json"


MODEL = ["--model", "maskrcnn:mobilenet_v3_large_fpn", "predict.model.min_size=128", "predict.model.max_size=128",
         "predict.model.detections_per_img=10"]


def test_sheet_end_to_end(data, tmp_path):
    """On one Ray worker: every stage timed for the typical and the two worst-case scenes, 2
    batch sizes, the warm-up apart; a 1 ms budget is broken by the inference."""
    p = subprocess.run([*CLI, "latency", *MODEL, "--input", str(data), "latency.max_images=4", "latency.warmup=2",
                        "latency.worst_case=2", "latency.batch_sizes=1,2", "--budget", "1", "--root",
                        str(tmp_path / "runs"), "--json"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    rows = storage.read_table_dir(storage.join(out["run_uri"], "tables", "latency")).to_pylist()
    timed = [r for r in rows if r["phase"] == "timed"]
    assert {r["setting"] for r in timed} == {"cpu_s128_b1_t1", "cpu_s128_b2_t1"}
    assert {r["scene"] for r in timed} == {"typical", "most_objects", "largest_frames"}
    stages = {r["stage"] for r in timed}
    assert stages == {"decode", "preprocess", "inference", "nms", "mask_paste", "postprocess", "tracking",
                      "serialization", "total"}
    for r in timed:
        assert r["n"] == (4 if r["scene"] == "typical" else 2), r
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"], r
    warm = [r for r in rows if r["phase"] == "warmup" and r["stage"] == "decode"]
    assert warm and all(r["n"] == 2 for r in warm)  # timed apart, never in the percentiles
    assert out["met"] is False and out["breaks"] == ["inference"]
    for v in out["verdicts"]:
        total = next(r for r in timed if r["setting"] == v["setting"] and r["scene"] == v["scene"]
                     and r["stage"] == "total")
        assert v["total_ms"] == total["p95_ms"] and v["breaks"] == "inference"
    assert Path(out["sheet"]).read_bytes()[:4] == b"\x89PNG"
    # in-process, a budget no image needs: met
    p = subprocess.run([*CLI, "latency", *MODEL, "--input", str(data), "latency.max_images=2", "latency.warmup=0",
                        "latency.worst_case=0", "latency.track=false", "--budget", "1e6", "--no-ray", "--root",
                        str(tmp_path / "runs"), "--json"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    again = json.loads(p.stdout)
    assert again["met"] is True and again["breaks"] == [] and again["scenes"] == ["typical"]


def test_refusals_exit_2_in_one_line(tmp_path):
    for argv, words in ((["latency", *MODEL], "needs --model"),
                        (["latency", *MODEL, "--input", str(tmp_path / "nope")], "no such file"),
                        (["latency", "--model", "nosuch", "--input", str(tmp_path)], "--model nosuch"),
                        (["latency", *MODEL, "--input", str(tmp_path), "latency.batch_sizes=0"], "latency.batch_sizes")):
        p = subprocess.run([*CLI, *argv, "--root", str(tmp_path / "runs")], capture_output=True, text=True,
                           cwd=REPO, timeout=120)
        assert p.returncode == 2 and words in p.stderr and "Traceback" not in p.stderr, (argv, p.stderr)
