"""The documented commands stay true, and mistakes a newcomer makes fail fast in one line
(issue "The newcomer's path without surprises", items 17, 23, 25)."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from cvray.cli.main import build_parser, main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [
    ["data", "ingest", "--dataset", "{tmp}"],
    ["validate", "{tmp}/a.json", "--images", "{tmp}"],
    ["track", "--det", "{tmp}", "--out", "{tmp}/o", "--ray"],
], ids=lambda a: a[0] + (" " + a[1] if a[0] == "data" else ""))
def test_an_unreachable_address_fails_fast_naming_it(argv, tmp_path, capsys):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train.json").write_text('{"images": [], "annotations": [], "categories": []}')
    (tmp_path / "a.json").write_text('{"images": [], "annotations": [], "categories": []}')
    (tmp_path / "SEQ" / "det").mkdir(parents=True)
    (tmp_path / "SEQ" / "det" / "det.txt").write_text("1,-1,10,10,20,20,0.9,-1,-1,-1\n")
    t0 = time.monotonic()
    rc = main([*[a.format(tmp=tmp_path) for a in argv], "--address", "127.0.0.1:1", "--root", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and time.monotonic() - t0 < 60
    assert "--address 127.0.0.1:1: no Ray cluster answers there" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # no run for a cluster that is not there


def test_a_dashboard_url_as_ray_address_says_which_is_which(tmp_path, capsys):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train.json").write_text('{"images": [], "annotations": [], "categories": []}')
    assert main(["data", "ingest", "--dataset", str(tmp_path), "--address", "http://127.0.0.1:8265"]) == 2
    assert "cvray submit" in capsys.readouterr().err


def _overrides_in(text: str) -> list[str]:
    return sorted(set(re.findall(r"\b((?:train|track|predict|eval|validation|synth|data|storage|ray|submit)"
                                 r"\.[a-z_][a-z0-9_.]*)=", text)))


def test_every_override_key_in_the_readme_and_help_exists():
    """`train.lr=0.01` was the README's and every --help's example; the key is `train.optim.lr`."""
    from cvray.config import load_config

    texts = [(REPO / "README.md").read_text(), build_parser().format_help()]
    texts += [p.read_text() for p in (REPO / "docs").glob("*.md")]
    keys = set()
    for t in texts:
        keys.update(k for k in _overrides_in(t) if k.rsplit(".", 1)[1] != "key")  # `track.key=value`: a placeholder
    assert "train.optim.lr" in keys
    bad = []
    for key in sorted(keys):
        try:
            load_config(None, [f"{key}=__probe__"])
        except Exception as exc:  # a wrong value type is fine: the key exists
            if "unknown key" in str(exc):
                bad.append(key)
    assert not bad, f"documented override keys that do not exist: {bad}"


def test_the_readme_train_line_names_a_dataset():
    line = next(ln for ln in (REPO / "README.md").read_text().splitlines() if ln.startswith("cvray train"))
    assert "--dataset" in line


def test_benchmark_usage_lines_use_the_project_venv():
    for b in (REPO / "benchmarks").glob("bench_*.py"):
        head = b.read_text()[:1500]
        for m in re.findall(r"([^\s`]*python\S*) benchmarks/", head):
            assert m in (".venv/bin/python", "python"), (b.name, m)
    make = (REPO / "Makefile").read_text()
    assert ".[dev,bench]" in make and "$(BIN)/python $$b" in make


def test_exit_1_when_a_unit_of_work_failed_with_the_count(ray_session, tmp_path, capsys):
    """The exit-code rule (docs/architecture.md): 6 good images and 1 unreadable one -> predict
    does the 6, reports the 1, exits 1 (it was 0: a failure looked like success)."""
    import json

    import cv2
    import numpy as np

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"{i}.png"), np.random.default_rng(i).integers(0, 255, (40, 40, 3), np.uint8))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    rc = main(["predict", "--model", "fasterrcnn:mobilenet_v3_large_fpn", "--input", str(folder),
               "--root", str(tmp_path / "runs"), "predict.model.num_classes=2", "predict.model.min_size=64",
               "predict.model.max_size=64", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 1 and out["prediction_rows"] == 6 and out["issue_rows"] == 1


def test_a_corrupt_part_or_a_non_parquet_det_is_one_line(tmp_path, capsys):
    import json

    root = tmp_path / "runs"
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--images", "2", "--videos", "1",
                 "synth.image_size=[32,32]", "synth.frames=4", "--root", str(root), "--json"]) == 0
    capsys.readouterr()
    assert main(["track", "--det", str(tmp_path / "d" / "mot" / "SYN-01" / "det" / "det.txt"), "--out",
                 str(tmp_path / "t"), "--root", str(root), "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    part = next((root / run_id / "tables" / "sequences").glob("*.parquet"))
    part.write_bytes(b"garbage")
    assert main(["runs", "show", run_id, "--root", str(root), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "not a Parquet file" in shown["table_rows"]["sequences"]["unreadable"][0]
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(b"not parquet")
    assert main(["track", "--det", str(fake), "--out", str(tmp_path / "t2"), "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "not a Parquet file" in err and "Traceback" not in err and "ArrowInvalid" not in err


def test_a_broken_video_is_one_line_without_ffmpeg_noise(tmp_path):
    import os
    import subprocess
    import sys

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(os.urandom(5000))
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    p = subprocess.run([sys.executable, "-m", "cvray.cli.main", "track", "--video", str(bad), "--model", "fasterrcnn",
                        "--out", str(tmp_path / "o"), "--root", str(tmp_path / "r")],
                       capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert p.returncode == 2 and "not a readable video" in p.stderr
    assert "moov atom" not in p.stderr, p.stderr
