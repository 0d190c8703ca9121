"""The CLI contract every command keeps: flags and overrides in any order, overrides validated
(an unknown key fails naming it), ``--out`` one meaning, ``track eval`` a real subcommand, Ray's
own INFO lines only with ``-v``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cvray.cli.main import main
from cvray.runs import list_runs

REPO = Path(__file__).resolve().parents[1]
BAD = "track.no_such_key=1"

# Every command, with arguments that are well-formed but point nowhere: the config (and so the
# unknown key) is checked before any input is read.
COMMANDS = [
    ["doctor"],
    ["demo", "--skip-train"],
    ["data", "synth", "--out", "{tmp}/s"],
    ["data", "ingest", "--dataset", "{tmp}/ds"],
    ["data", "card", "{tmp}/a.json", "--images", "{tmp}/i", "--out", "{tmp}/c"],
    ["data", "split", "{tmp}/a.json", "--out", "{tmp}/sp"],
    ["data", "convert", "{tmp}/a.json", "--to", "yolo", "--out", "{tmp}/y"],
    ["validate", "{tmp}/a.json", "--images", "{tmp}/i"],
    ["train", "--dataset", "{tmp}/ds"],
    ["predict", "--model", "fasterrcnn", "--input", "{tmp}/i"],
    ["eval", "--gt", "{tmp}/gt.json", "--pred", "{tmp}/p.json"],
    ["report", "{tmp}/run"],
    ["track", "--det", "{tmp}/det.txt", "--out", "{tmp}/o"],
    ["track", "--video", "{tmp}/v.mp4", "--model", "fasterrcnn", "--out", "{tmp}/o"],
    ["track", "eval", "--gt", "{tmp}/gt", "--pred", "{tmp}/pred"],
    ["robustness", "--model", "fasterrcnn", "--data", "{tmp}/ds"],
    ["calibrate", "--model", "fasterrcnn", "--data", "{tmp}/ds"],
    ["latency", "--model", "fasterrcnn", "--input", "{tmp}/i"],
    ["export", "onnx", "--model", "fasterrcnn", "--input", "{tmp}/i"],
    ["runs", "list"],
    ["runs", "show", "x"],
    ["submit", "validate", "{tmp}/a.json", "--images", "{tmp}/i", "--address", "http://127.0.0.1:1"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_unknown_override_key_fails_for_every_command(argv, tmp_path, capsys):
    args = [a.format(tmp=tmp_path) for a in argv] + ["--root", str(tmp_path / "runs")]
    words = next(i for i, a in enumerate(argv + ["-"]) if a.startswith("-") or "{tmp}" in a)
    for position in (len(args), words):  # after every flag, and right after the command words
        assert main([*args[:position], BAD, *args[position:]]) == 2
        assert "track.no_such_key: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not list_runs(str(tmp_path / "runs"))


def test_track_eval_is_a_subcommand_with_config_and_overrides(tmp_path, capsys):
    assert main(["track", "eval", "no.such.key=1", "--gt", "G", "--pred", "P"]) == 2
    assert "no: unknown key" in capsys.readouterr().err
    assert main(["track", "eval", "--config", str(tmp_path / "nonexistent.yaml"), "--gt", "G",
                 "--pred", "P"]) == 2
    assert "cannot read config" in capsys.readouterr().err
    assert main(["track", "eval", "--pred", "P"]) == 2  # --gt is a required flag of the subcommand


def test_overrides_on_both_sides_of_flags(ray_session, tmp_path, capsys):
    root = str(tmp_path / "runs")
    assert main(["data", "synth", "--out", str(tmp_path / "s"), "seed=3", "--json", "synth.frames=8",
                 "--images", "2", "synth.image_size=[32,32]", "--videos", "0", "--root", root]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["seed"] == 3 and out["images"] == 2
    manifest = list_runs(root)[0]
    assert manifest["config"]["synth"]["frames"] == 8 and manifest["config"]["seed"] == 3


def test_out_means_an_output_folder_everywhere(tmp_path, capsys):
    # predict writes only into its run: --out is an error that says to use --root
    assert main(["predict", "--model", "fasterrcnn", "--input", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--root" in err and "--out" in err


def test_ray_info_lines_only_with_verbose(tmp_path):
    """The demo's stderr (embedded Ray, Ray Data ingest): no Ray Data INFO lines unless ``-v``."""
    def demo(*extra):
        root = tmp_path / f"runs{len(extra)}"
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        p = subprocess.run([sys.executable, "-m", "cvray.cli.main", "demo", "--skip-train", "--images", "4",
                            "--videos", "0", "synth.image_size=[32,32]", "ray.include_dashboard=false",
                            "ray.num_cpus=1", "--root", str(root), "--json", *extra],
                           capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
        assert p.returncode == 0, p.stderr[-2000:]
        return p.stderr

    quiet = demo()
    assert "streaming_executor" not in quiet and " INFO " not in quiet, quiet
    assert "Token authentication is enabled" not in quiet, quiet  # the embedded Ray's banner
    assert "streaming_executor" in demo("-v")
