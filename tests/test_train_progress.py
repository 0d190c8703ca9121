"""Training progress: the CLI's Progress gets every iteration of a plain run (and prints plain
lines when stderr is not a terminal); the Ray path's progress file and driver-side poller (the
Ray run itself is checked in test_train_ray.py)."""
from __future__ import annotations

import io
import re
from pathlib import Path

from cvray.cli.main import main
from cvray.cli.progress import Progress
from cvray.config import load_config
from cvray.data.synth import CocoSynthConfig, make_coco
from cvray.io import storage
from cvray.runs import start_run
from cvray.train.progress import ProgressFile, ProgressPoller
from cvray.train.workflow import TrainInputs, run_train

REPO = Path(__file__).resolve().parents[1]
TINY = ["train.model.backbone=mobilenet_v3_large_fpn", "train.model.norm=gn", "train.model.min_size=64",
        "train.model.max_size=64", "train.model.fpn_channels=32", "train.model.box_head_dim=64",
        "train.model.mask_head_dim=16", "train.model.mask_head_layers=1", "train.model.anchor_sizes=[16,32,64]",
        "train.batch_size=2", "train.checkpoint_period=10", "train.tensorboard=false",
        "train.max_val_images=2", "train.torch_threads=1"]


def _coco(tmp_path):
    return make_coco(tmp_path / "d", n_images=10, seed=6, image_size=(64, 64),
                     config=CocoSynthConfig(categories=("circle", "rectangle"), crowd_prob=0.0))["root"]


def test_plain_run_reports_every_iteration_with_loss_and_metric(tmp_path):
    cfg = load_config(None, TINY + ["train.max_iter=3", "train.eval_period=2"])
    stream = io.StringIO()
    progress = Progress("cvray train", "it", stream=stream, interval=0, tty=False)
    with start_run("train", config=cfg, root=str(tmp_path / "runs"), seed=0) as run:
        with progress:
            out = run_train(run, cfg.train, TrainInputs(_coco(tmp_path)), ray=False, on_progress=progress)
    lines = stream.getvalue().splitlines()
    done = [int(m.group(1)) for m in (re.match(r"cvray train: (\d+)/3 it", ln) for ln in lines) if m]
    assert done[:3] == [1, 2, 3] and done[-1] == out["iterations"] == 3, lines
    assert all("loss=" in ln for ln in lines)
    # the evaluation at iteration 2 shows up from then on, the final one in the last line
    assert "segm_AP=" not in lines[0] and "segm_AP=" in lines[1] and "segm_AP=" in lines[-1]
    assert "ETA" in lines[0] and "(100%)" in lines[-1]


def test_cli_train_prints_progress_lines_on_stderr(tmp_path, capsys):
    args = ["train", "--config", str(REPO / "configs" / "demo_maskrcnn_cpu.yaml"), "--dataset", _coco(tmp_path),
            "--root", str(tmp_path / "runs"), "--no-ray", "--json", "train.model.min_size=64",
            "train.model.max_size=64", "train.eval_period=0", "train.max_iter=2", "train.tensorboard=false",
            "train.max_val_images=2"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "cvray train: 2/2 it (100%)" in captured.err, captured.err
    assert captured.out.lstrip().startswith("{")  # --json stays one clean object on stdout


def test_progress_file_and_poller(tmp_path):
    uri = str(tmp_path / "progress.json")
    storage.write_json(uri, {"done": 9, "total": 9, "info": {}})  # an earlier attempt's file
    t = [0.0]
    write = ProgressFile(uri, interval=2.0, clock=lambda: t[0])
    calls = []
    poller = ProgressPoller(uri, lambda done, total, **info: calls.append((done, total, info)), interval=0.05)
    assert not poller.poll() and calls == []  # the earlier file is not reported
    write(1, 5, loss=2.5)
    t[0] = 1.0
    write(2, 5, loss=2.0)  # within 2 s: skipped
    assert poller.poll() and calls == [(1, 5, {"loss": 2.5})]
    t[0] = 1.5
    write(5, 5, loss=1.0, segm_AP=0.25)  # the last iteration is always written
    with poller:
        pass  # stop() polls a last time
    assert calls[-1] == (5, 5, {"loss": 1.0, "segm_AP": 0.25}) and write.writes == 2
