"""``cvray train`` end to end (no Ray: the Ray path is covered in test_train_ray.py) and configs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cvray.cli.main import main
from cvray.config import load_config
from cvray.data.synth import CocoSynthConfig, make_coco
from cvray.train.config import TrainConfig
from cvray.train.demo import DEMO_TRAIN

REPO = Path(__file__).resolve().parents[1]


def test_demo_config_file_matches_the_demo_preset():
    cfg = load_config(REPO / "configs" / "demo_maskrcnn_cpu.yaml")
    assert cfg.train == TrainConfig.model_validate(DEMO_TRAIN)
    assert cfg.train.num_workers == 2 and cfg.train.model.min_size == 128


@pytest.mark.parametrize("name", ["maskrcnn_r50_fpn_1x.yaml", "deeplabv3_r50_semantic.yaml"])
def test_cluster_configs_validate(name):
    cfg = load_config(REPO / "configs" / name)
    assert cfg.train.use_gpu is True
    if name.startswith("maskrcnn"):  # the 1x schedule
        assert (cfg.train.max_iter, cfg.train.optim.steps, cfg.train.optim.lr) == (90000, (60000, 80000), 0.02)


def test_cli_train_then_resume_json(tmp_path, capsys):
    info = make_coco(tmp_path / "d", n_images=12, seed=5, image_size=(64, 64),
                     config=CocoSynthConfig(categories=("circle", "rectangle"), crowd_prob=0.0))
    base = ["train", "--config", str(REPO / "configs" / "demo_maskrcnn_cpu.yaml"), "--dataset", info["root"],
            "--root", str(tmp_path / "runs"), "--no-ray", "--json", "train.model.min_size=64",
            "train.model.max_size=64", "train.eval_period=0", "train.checkpoint_period=1",
            "train.tensorboard=false", "train.max_val_images=2"]
    assert main(base + ["train.max_iter=1"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["iterations"] == 1 and first["resumed_from"] is None
    assert {"bbox_AP", "segm_AP"} <= set(first)
    # resume the latest train run and continue to 2 iterations in the same run folder
    assert main(base + ["train.max_iter=2", "train.resume=true"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["run"] == first["run"] and second["resumed_from"] == 1 and second["iterations"] == 2


def test_cli_train_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--root", str(tmp_path), "--no-ray"]) == 2
    assert "no dataset" in capsys.readouterr().err
    assert main(["train", "--dataset", str(tmp_path), "--root", str(tmp_path), "--no-ray",
                 "train.resume=true"]) == 2
    assert "no train run with a checkpoint" in capsys.readouterr().err
