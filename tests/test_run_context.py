"""One run context for every command: each command, run with ``--json`` on tiny inputs, makes a run
whose manifest has the config, seed, argv, versions, git and (where it read a dataset) a
fingerprint; a failing command commits ``failed``, Ctrl-C commits ``interrupted``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cvray.cli.main import main
from cvray.runs import list_runs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A synthetic COCO + MOT dataset (4 images, one 6-frame sequence) and perfect COCO results."""
    tmp = tmp_path_factory.mktemp("ctx")
    assert main(["data", "synth", "--out", str(tmp / "ds"), "--images", "4", "--videos", "1",
                 "synth.image_size=[48,48]", "synth.frames=6", "--root", str(tmp / "synth-runs"),
                 "--json"]) == 0
    coco = tmp / "ds" / "coco"
    gt = json.loads((coco / "annotations" / "instances_train.json").read_text())
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
             for a in gt["annotations"]]
    (tmp / "pred.json").write_text(json.dumps(preds))
    return tmp


def _commands(t: Path) -> dict[str, tuple[list[str], bool]]:
    """command -> (argv, whether it reads a dataset)."""
    coco, mot = t / "ds" / "coco", t / "ds" / "mot"
    train_json = str(coco / "annotations" / "instances_train.json")
    anns = sorted(str(p) for p in (coco / "annotations").glob("instances_*.json"))
    return {
        "data synth": (["data", "synth", "--out", str(t / "s2"), "--images", "2", "--videos", "0",
                        "synth.image_size=[32,32]"], False),
        "data ingest": (["data", "ingest", "--dataset", str(coco)], True),
        "validate": (["validate", *anns, "--images", str(coco / "images"), "--local", "--no-baselines"], True),
        "data card": (["data", "card", *anns, "--images", str(coco / "images"), "--out", str(t / "card"),
                       "--no-validate"], True),
        "data split": (["data", "split", *anns, "--out", str(t / "split")], True),
        "data convert": (["data", "convert", train_json, "--to", "yolo", "--out", str(t / "yolo")], True),
        "eval": (["eval", "--gt", train_json, "--pred", str(t / "pred.json")], True),
        "predict": (["predict", "--model", "fasterrcnn:mobilenet_v3_large_fpn", "--input", train_json,
                     "predict.model.min_size=48", "predict.model.max_size=48", "predict.model.fpn_channels=32",
                     "predict.model.box_head_dim=64"], True),
        "track": (["track", "--det", str(mot / "SYN-01" / "det" / "det.txt"), "--out", str(t / "tracks")], True),
        "track eval": (["track", "eval", "--gt", str(mot), "--pred", str(t / "tracks")], True),
        "train": (["train", "--dataset", str(coco), "--no-ray", "train.max_iter=1", "train.optim.steps=[]",
                   "train.tensorboard=false", "train.model.backbone=mobilenet_v3_large_fpn",
                   "train.model.min_size=48", "train.model.max_size=48", "train.model.fpn_channels=32",
                   "train.model.box_head_dim=64", "train.model.mask_head_dim=32",
                   "train.model.mask_head_layers=1"], True),
        "demo": (["demo", "--skip-train", "--images", "3", "--videos", "0", "synth.image_size=[32,32]"], False),
    }


def test_every_command_makes_a_complete_run(ray_session, tiny, tmp_path, capsys):
    root = str(tmp_path / "runs")
    expected = _commands(tiny)
    for command, (argv, reads) in expected.items():  # in order: track eval scores track's output
        assert main([*argv, "--root", root, "--json", "seed=7"]) == 0, (command, capsys.readouterr().err)
        capsys.readouterr()
    runs = {m["command"]: m for m in list_runs(root)}
    assert set(runs) == set(expected)
    for command, (_, reads) in expected.items():
        m = runs[command]
        assert m["status"] == "succeeded", command
        assert m["seed"] == 7 and m["config"]["seed"] == 7, command
        assert m["argv"].startswith("cvray ") and "seed=7" in m["argv"], command
        assert m["environment"]["packages"]["pyarrow"] and m["environment"]["python"], command
        assert "sha" in m["git"], command
        if reads:
            assert len((m["dataset"] or {}).get("combined") or "") == 64, (command, m["dataset"])
    assert runs["data ingest"]["ray"]["resources"]["CPU"] >= 1
    assert runs["track eval"]["tables"] == ["metrics"]
    # the same dataset gives the same fingerprint whichever command read it
    assert runs["data ingest"]["dataset"]["combined"] == runs["validate"]["dataset"]["combined"] \
        == runs["train"]["dataset"]["combined"]


def test_an_error_inside_the_context_commits_a_failed_run_with_its_partial_tables(tmp_path):
    import pyarrow as pa

    from cvray.config import load_config
    from cvray.runs import run_context
    from cvray.runs.tables import declare

    cfg = load_config(None, [f"storage.root={tmp_path}", "seed=3"])
    with pytest.raises(ValueError, match="boom"):
        with run_context("unit", cfg, argv=["cvray", "unit"], dataset={"combined": "x" * 64}) as run:
            run.write_table("part", pa.table({"a": [1]}).cast(declare("part", [pa.field("a", pa.int64())])))
            raise ValueError("boom")
    (m,) = list_runs(str(tmp_path))
    assert m["status"] == "failed" and "boom" in m["error"] and m["tables"] == ["part"]
    assert m["seed"] == 3 and m["dataset"]["combined"] == "x" * 64


@pytest.mark.parametrize("sig,code,error", [(signal.SIGINT, 130, "KeyboardInterrupt"),
                                            (signal.SIGTERM, 143, "Terminated")], ids=["SIGINT", "SIGTERM"])
def test_a_signal_commits_an_interrupted_run(tmp_path, sig, code, error):
    """Ctrl-C, and SIGTERM (what ``ray job stop`` and schedulers send), end the run ``interrupted``."""
    root = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    p = subprocess.Popen([sys.executable, "-m", "cvray.cli.main", "data", "synth", "--out", str(tmp_path / "big"),
                          "--images", "5000", "--videos", "0", "--root", str(root)],
                         cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(root.glob("*/_started.json")):
        assert p.poll() is None and time.time() < deadline, p.stderr.read() if p.poll() is not None else "slow"
        time.sleep(0.2)
    time.sleep(1.0)
    p.send_signal(sig)
    assert p.wait(timeout=60) == code, p.stderr.read()
    (m,) = list_runs(str(root))
    assert m["status"] == "interrupted" and error in m["error"], m
