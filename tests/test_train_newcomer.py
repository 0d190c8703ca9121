"""The training path as a newcomer walks it (issue: "The newcomer's path without surprises",
items 1-7): a relative --dataset with Ray, a diverging Ray run's reason, demo overrides on top of
the CPU preset, Ctrl-C during Ray training, resuming a finished run, run ids that escape the
runs root, and an empty val split."""
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
from cvray.runs import list_runs, read_table

REPO = Path(__file__).resolve().parents[1]
TINY = ["train.optim.steps=[]", "train.tensorboard=false", "train.model.backbone=mobilenet_v3_large_fpn",
        "train.model.min_size=48", "train.model.max_size=48", "train.model.fpn_channels=32",
        "train.model.box_head_dim=64", "train.model.mask_head_dim=32", "train.model.mask_head_layers=1",
        "train.num_workers=1"]


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("newcomer")
    assert main(["data", "synth", "--out", str(tmp / "ds"), "--images", "12", "--videos", "0",
                 "synth.image_size=[48,48]", "--root", str(tmp / "r"), "--json"]) == 0
    return tmp


def test_relative_dataset_trains_with_ray(ray_session, ds, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ds)
    rc = main(["train", "--dataset", "ds/coco", "--root", str(tmp_path / "runs"), "train.max_iter=2",
               "train.eval_period=2", "train.checkpoint_period=2", *TINY, "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err[-2000:]
    (m,) = list_runs(str(tmp_path / "runs"))
    assert m["status"] == "succeeded" and m["summary"]["iterations"] == 2


def test_relative_dataset_ingests_with_ray(ray_session, ds, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ds)
    assert main(["data", "ingest", "--dataset", "ds/coco", "--root", str(tmp_path / "runs"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images_failed"] == 0


def test_a_diverging_ray_run_reports_why(ray_session, ds, tmp_path, capsys):
    rc = main(["train", "--dataset", str(ds / "ds" / "coco"), "--root", str(tmp_path / "runs"), "train.max_iter=6",
               "train.optim.lr=1000", "train.optim.clip_grad_norm=null", "train.optim.warmup_iters=0",
               "train.checkpoint_period=100", "train.eval_period=100", *TINY])
    err = capsys.readouterr().err
    assert rc == 1
    assert "NonFiniteLossError" in err and "optim.lr" in err and "storage error" not in err, err[-2000:]


def test_resuming_a_finished_run_does_nothing_and_says_so(ds, tmp_path, capsys):
    root = str(tmp_path / "runs")
    base = ["train", "--dataset", str(ds / "ds" / "coco"), "--root", root, "--no-ray", "train.max_iter=2",
            "train.eval_period=1", "train.checkpoint_period=1", *TINY]
    assert main([*base, "--json"]) == 0
    (m,) = list_runs(root)
    before = read_table(root, m["run_id"], "eval_metrics").column("iteration").to_pylist()
    capsys.readouterr()
    for _ in range(2):
        assert main([*base, "train.resume=true", f"train.run_id={m['run_id']}", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["resumed"] is False and "already finished at iteration 2" in out["message"]
    assert read_table(root, m["run_id"], "eval_metrics").column("iteration").to_pylist() == before == [1, 2]
    assert [r["status"] for r in list_runs(root)] == ["succeeded"]


def test_run_ids_stay_under_the_runs_root(ds, tmp_path, capsys):
    root = tmp_path / "runs"
    base = ["train", "--dataset", str(ds / "ds" / "coco"), "--root", str(root), "--no-ray", "train.max_iter=1", *TINY]
    for bad in ("../escaped", "a/b", "/tmp/x", ".."):
        assert main([*base, f"train.run_id={bad}"]) == 2
        assert "run id" in capsys.readouterr().err
    assert not (tmp_path / "escaped").exists()
    assert main([*base, "train.resume=true", "train.run_id=bogus"]) == 2  # nothing to resume: no junk run
    assert "no checkpoint" in capsys.readouterr().err
    assert not root.exists() or not list(root.iterdir())


def test_an_empty_val_split_says_so_instead_of_ap_zero(ds, tmp_path, capsys):
    # 12 synthetic images: train/val/test all get some; write an empty val split by hand
    coco = tmp_path / "coco"
    (coco / "annotations").mkdir(parents=True)
    os.symlink(ds / "ds" / "coco" / "images", coco / "images")
    train = json.loads((ds / "ds" / "coco" / "annotations" / "instances_train.json").read_text())
    (coco / "annotations" / "instances_train.json").write_text(json.dumps(train))
    (coco / "annotations" / "instances_val.json").write_text(json.dumps({**train, "images": [], "annotations": []}))
    assert main(["train", "--dataset", str(coco), "--root", str(tmp_path / "runs"), "--no-ray", "train.max_iter=1",
                 *TINY, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["validation"].startswith("none") and "bbox_AP" not in out and "best" not in out


def test_demo_overrides_apply_on_top_of_the_cpu_preset():
    from cvray.config import load_config
    from cvray.train.demo import DEMO_TRAIN, demo_train_config

    c = demo_train_config(load_config(None, ["train.max_iter=50", "train.optim.lr=0.001"]))
    assert (c.max_iter, c.optim.lr) == (50, 0.001)
    assert c.model.backbone == DEMO_TRAIN["model"]["backbone"] and c.batch_size == DEMO_TRAIN["batch_size"]
    assert demo_train_config(load_config(None, [])).max_iter == DEMO_TRAIN["max_iter"]


def test_ctrl_c_during_ray_training_is_an_interruption(ds, tmp_path):
    root = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    p = subprocess.Popen([sys.executable, "-m", "cvray.cli.main", "train", "--dataset", str(ds / "ds" / "coco"),
                          "--root", str(root), "train.max_iter=5000", "train.eval_period=5000",
                          "train.checkpoint_period=5000", *TINY, "ray.num_cpus=2", "ray.include_dashboard=false"],
                         cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not list(root.glob("*/progress.json")):  # the workers are training
        assert p.poll() is None and time.time() < deadline, p.stderr.read() if p.poll() is not None else "slow"
        time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    rc = p.wait(timeout=120)
    err = p.stderr.read()
    assert rc == 130 and "interrupted" in err, (rc, err[-2000:])
    (m,) = list_runs(str(root))
    assert m["status"] == "interrupted", m.get("error")
