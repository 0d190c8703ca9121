"""Drift monitoring wired into ``cvray predict`` (``--drift`` / ``--drift-reference``), end to end on
real Ray: a clean reference run, a run on the same cameras after a known shift (the corruption
functions make it), and a clean control. Each alert fires on its shift and not on the clean stream."""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from cvray.data.synth_coco import make_coco
from cvray.robustness.corruptions import corrupt
from predict_helpers import tiny_model_config, write_images

WINDOW = 150  # no-shift PSI floor (B - 1)(1/n + 1/m) = 0.12 < 0.2


def _cameras(work: Path, name: str, files: list[Path], shifts: dict[str, tuple[str, int] | None]) -> Path:
    """<work>/<name>/<camera>/*.jpg, WINDOW images per camera (camera c takes every
    len(shifts)-th file from c), each camera optionally corrupted (name, severity)."""
    out = work / name
    for c, (cam, shift) in enumerate(sorted(shifts.items())):
        (out / cam).mkdir(parents=True)
        for i, f in enumerate(files[c::len(shifts)][:WINDOW]):
            rgb = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
            if shift is not None:
                rgb = corrupt(rgb, shift[0], shift[1], np.random.default_rng(i))
            cv2.imwrite(str(out / cam / f"{i:04d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
    return out


def _predict(model: Path, config: Path, data: Path, root: Path, *extra: str) -> dict:
    from cvray.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["predict", "--model", str(model), "--input", str(data), "--config", str(config),
                   "--root", str(root), "--json", "--actors", "1", "--drift-window", str(WINDOW), *extra])
    assert rc == 0, err.getvalue()[-3000:]
    return json.loads(out.getvalue())


def _rows(run_uri: str, table: str) -> list[dict]:
    return pq.read_table(str(Path(run_uri, "tables", table))).to_pylist()


@pytest.fixture(scope="module")
def runs(ray_session, tmp_path_factory):
    work = tmp_path_factory.mktemp("drift")
    cfg = tiny_model_config(work)
    model = Path(cfg.weights)
    config = work / "predict.yaml"
    net = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in ("weights", "strict_weights")}
    config.write_text(yaml.safe_dump({"predict": {"model": net, "geometry": {"size": [64, 64]}}}))
    root = work / "runs"
    # one synthetic set split three ways: the reference, the shifted and the control stream come
    # from the same distribution (disjoint images), so only the corruption differs
    files = sorted(Path(make_coco(work / "src", n_images=6 * WINDOW, seed=1)["images_dir"]).rglob("*.jpg"))
    clean = _cameras(work, "clean", files[0::3], {"cam0": None, "cam1": None})
    shifted = _cameras(work, "shifted", files[1::3], {"cam0": ("gaussian_blur", 4), "cam1": ("low_light", 4)})
    control = _cameras(work, "control", files[2::3], {"cam0": None, "cam1": None})
    ref = _predict(model, config, clean, root, "--drift")
    return {"ref": ref,
            "shifted": _predict(model, config, shifted, root, "--drift-reference", ref["run_uri"]),
            "control": _predict(model, config, control, root, "--drift-reference", ref["run_uri"])}


def test_reference_run_writes_its_windows(runs):
    ref = runs["ref"]
    d = ref["drift"]
    assert d["sources"] == 2 and d["windows"] == 2 and d["alerts"] == 0, d
    rec = json.loads(Path(ref["run_uri"], "drift_reference.json").read_text())
    assert sorted(rec["sources"]) == ["cam0", "cam1"]
    assert all(s["frames"] == WINDOW for s in rec["sources"].values())
    windows = _rows(ref["run_uri"], "drift_windows")
    assert len(windows) == 2 and all(w["is_reference"] for w in windows)
    # the JPEG quality the files were written with is read back from their quantisation tables
    assert rec["sources"]["cam0"]["samples"]["jpeg_quality"][:3] == [90.0, 90.0, 90.0]


def test_each_alert_fires_on_its_shift(runs):
    s = runs["shifted"]
    alerts = _rows(s["run_uri"], "drift_alerts")
    by_cam = {cam: {a["rule"] for a in alerts if a["source"] == cam} for cam in ("cam0", "cam1")}
    assert "blur" in by_cam["cam0"] and "low_light" not in by_cam["cam0"], by_cam
    assert "low_light" in by_cam["cam1"] and "blur" not in by_cam["cam1"], by_cam
    drift = {(r["source"], r["feature"]): r for r in _rows(s["run_uri"], "drift")}
    blur = drift[("cam0", "laplacian_var")]
    assert blur["shifted"] and blur["ks_shifted"] and blur["current_stat"] < blur["reference_stat"] / 2, blur
    dark = drift[("cam1", "mean_luma")]
    assert dark["shifted"] and dark["ks_shifted"] and dark["current_stat"] < dark["reference_stat"], dark
    assert s["drift"]["own_reference"] == [] and Path(s["drift"]["plot"]).exists()
    from cvray.report.html import build_report

    page = build_report(s["run_uri"])
    assert "<h2>Drift (2 sources" in page and "Shift matrix" in page
    assert "sharpness (Laplacian variance) fell" in page and "mean luma fell" in page


def test_no_alert_on_the_clean_stream(runs):
    c = runs["control"]
    assert c["drift"]["alerts"] == 0, _rows(c["run_uri"], "drift_alerts")
    rows = _rows(c["run_uri"], "drift")
    image = [r for r in rows if r["feature"] in ("mean_luma", "laplacian_var", "noise_sigma", "rms_contrast")]
    # PSI alone over 150 frames can pass 0.2 on unshifted data (its floor is 0.12); KS agrees nowhere
    assert image and not any(r["ks_shifted"] for r in image), [(r["source"], r["feature"], r["ks_pvalue"])
                                                                for r in image]


def test_a_bad_reference_is_one_line(tmp_path):
    write_images(tmp_path / "in", 1)
    p = subprocess.run([sys.executable, "-m", "cvray.cli.main", "predict", "--model", "fasterrcnn", "--input", str(tmp_path / "in"),
                        "--drift-reference", str(tmp_path / "nope"), "--root", str(tmp_path / "runs"),
                        "predict.model.num_classes=2"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "no drift reference" in p.stderr and "drift_reference.json" in p.stderr, p.stderr


def _det_txt(path: Path, frames: int, drop_from: int | None, seed: int) -> Path:
    """Three boxes moving right at 2 px/frame; from ``drop_from`` on, their scores fall from
    U(0.7, 0.95) to U(0.3, 0.5) (a detector losing confidence, nothing else changes)."""
    rng = np.random.default_rng(seed)
    lines = []
    for f in range(1, frames + 1):
        for k in range(3):
            lo, hi = (0.3, 0.5) if drop_from is not None and f >= drop_from else (0.7, 0.95)
            lines.append(f"{f},-1,{10 + 2 * f % 500 + 0.0:.1f},{40 + 60 * k:.1f},30.0,40.0,{rng.uniform(lo, hi):.4f},-1,-1,-1")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_track_drift_fires_on_a_confidence_drop_and_not_on_a_steady_stream(ray_session, tmp_path):
    from cvray.cli.main import main

    def track(det: Path, *extra: str) -> dict:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = main(["track", "--det", str(det), "--out", str(tmp_path / det.stem), "--frame-rate", "10",
                       "--root", str(tmp_path / "runs"), "--json", "--drift-window", "100", *extra])
        assert rc == 0
        return json.loads(out.getvalue())

    steady = track(_det_txt(tmp_path / "steady.txt", 400, None, 0), "--drift")
    dropped = track(_det_txt(tmp_path / "dropped.txt", 400, 201, 1), "--drift")
    assert steady["drift"]["windows"] == 4 and steady["drift"]["alerts"] == 0, steady["drift"]
    alerts = _rows(dropped["run_uri"] if "run_uri" in dropped else str(tmp_path / "runs" / dropped["run_id"]),
                   "drift_alerts")
    # windows 2 and 3 (frames 201-400) against window 0; window 1 is clean
    assert [(a["rule"], a["window_index"]) for a in alerts] == [("confidence_drop", 2)], alerts
    assert dropped["drift"]["alerts_by_rule"] == {"confidence_drop": 1}
    assert dropped["drift"]["suppressed"] == {"confidence_drop": 1}  # window 3: inside the rule's cooldown
    # temporal evidence in the same summary: unbroken tracks never flicker; each becomes present
    # at its 3rd frame (track.presence_frames = 3); the boxes jump back at frame 250 (x wraps at
    # 500 px), so 3 + 3 tracks
    p = steady["presence"]
    assert p["tracks"] == 6 and p["raw_flicker_rate"] == 0 and p["flicker_removed"] is None, p
    assert p["onset_delay_mean"] == 2 and p["tracks_never_present"] == 0


def test_presence_bridges_a_missed_frame_in_cvray_track(ray_session, tmp_path):
    """One box on frames 1-30 except frame 11 (the detector missed it): the tracker keeps its id
    and outputs nothing at 11 -- 2 raw toggles (off, on) over 30 track-frames; the presence filter
    (absent after 2 misses) holds it through frame 11: 0 toggles, flicker removed 100 %."""
    from cvray.cli.main import main

    det = tmp_path / "gap.txt"
    det.write_text("".join(f"{f},-1,{100 + f:.1f},50.0,30.0,40.0,0.9,-1,-1,-1\n" for f in range(1, 31) if f != 11))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["track", "--det", str(det), "--out", str(tmp_path / "o"), "--frame-rate", "10",
                   "--root", str(tmp_path / "runs"), "--json"])
    assert rc == 0
    p = json.loads(out.getvalue())["presence"]
    assert p["tracks"] == 1 and p["raw_flicker_rate"] == pytest.approx(2 / 30), p
    assert p["present_flicker_rate"] == 0 and p["flicker_removed"] == 1.0 and p["observed_not_present"] == 2
