"""Learning dynamics: on an easy synthetic set the loss falls and validation AP rises.

CPU budget: 80 optimizer steps of the demo's CPU-sized Mask R-CNN (MobileNetV3-FPN with
GroupNorm, 128 px, 4 images per step) from random initialisation -- about a minute on 2 idle
cores (166 s measured on a shared machine at load average 10). The thresholds are stated here and
sit under what the run reaches (measured on this set: bbox AP50 0.004 / 0.031 / 0.079 / 0.085 and
segm AP50 0.002 / 0.030 / 0.074 / 0.071 at steps 20 / 40 / 60 / 80; mean loss 2.73 over the first
10 steps, 1.37 over the last 10).
"""
from __future__ import annotations

import statistics

from cvray.data.synth import CocoSynthConfig, make_coco
from cvray.runs import start_run
from cvray.train.config import TrainConfig
from cvray.train.demo import DEMO_TRAIN
from cvray.train.workflow import run_training

LOSS_DROP = 0.6       # mean loss of the last 10 steps <= 60 % of the first 10 steps'
MIN_BBOX_AP50 = 0.05  # box AP at IoU 0.5 on the validation split after 80 steps
MIN_SEGM_AP50 = 0.03  # mask AP at IoU 0.5 after 80 steps
MAX_EARLY_AP50 = 0.02  # box AP50 at step 20 (end of warmup): the model has not learnt yet


def test_loss_falls_and_val_ap_rises(tmp_path):
    easy = CocoSynthConfig(categories=("circle", "rectangle"), objects_per_image=(1, 3),
                           size_range=(0.12, 0.3), crowd_prob=0.0, center_margin=0.0)
    root = make_coco(tmp_path / "easy", n_images=60, seed=1, config=easy)["root"]
    cfg = TrainConfig.model_validate({
        **DEMO_TRAIN,
        "optim": {**DEMO_TRAIN["optim"], "schedule": "constant", "warmup_iters": 20},
        "max_iter": 80, "batch_size": 4, "eval_period": 20, "checkpoint_period": 80,
        "tensorboard": False, "torch_threads": 1,
    })
    with start_run("train", config=cfg, root=str(tmp_path / "runs"), seed=0) as run:
        out = run_training(cfg, run, root, seed=0, use_ray=False)

    curves = run.read_table("train_curves").to_pylist()
    first = statistics.mean(r["loss"] for r in curves[:10])
    last = statistics.mean(r["loss"] for r in curves[-10:])
    assert last <= LOSS_DROP * first, (first, last)

    evals = {r["iteration"]: r for r in run.read_table("eval_metrics").to_pylist()}
    assert sorted(evals) == [20, 40, 60, 80]
    assert evals[20]["bbox_AP50"] <= MAX_EARLY_AP50, evals[20]
    m = out["metrics"]
    assert m["bbox_AP50"] >= MIN_BBOX_AP50, m
    assert m["segm_AP50"] >= MIN_SEGM_AP50, m
    assert m["bbox_AP50"] > evals[20]["bbox_AP50"] and m["segm_AP"] > 0
