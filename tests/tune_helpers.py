"""Small, fast searches for the tune tests: the learning test's easy synthetic set (2 classes,
large objects), the demo's CPU Mask R-CNN, 10-iteration evaluations on 12 val images."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from cvray.data.synth import CocoSynthConfig, make_coco
from cvray.train.demo import DEMO_TRAIN

SANE_LR, TINY_LR = 2e-3, 2e-5  # the demo's lr, and one 100x too small

EASY = CocoSynthConfig(categories=("circle", "rectangle"), objects_per_image=(1, 3),
                       size_range=(0.12, 0.3), crowd_prob=0.0, center_margin=0.0)


def easy_dataset(root: Path) -> str:
    return make_coco(root, n_images=60, seed=1, config=EASY)["root"]


def tune_config(path: Path, dataset: str, *, tune: dict, max_iter: int = 40, eval_period: int = 10,
                batch_size: int = 4, storage_root: str | None = None, seed: int = 0) -> Path:
    train = copy.deepcopy(DEMO_TRAIN)
    for k in ("num_workers", "cpus_per_worker", "max_failures"):
        train.pop(k)
    train["optim"] = {**train["optim"], "schedule": "constant", "warmup_iters": 5}
    train.update(max_iter=max_iter, eval_period=eval_period, checkpoint_period=eval_period,
                 batch_size=batch_size, max_val_images=12, tensorboard=False, torch_threads=1, log_period=10)
    cfg = {"name": "tune-test", "seed": seed, "data": {"root": dataset}, "train": train,
           "tune": {"metric": "bbox_AP50", "trial_cpus": 1, **tune}}
    if storage_root:
        cfg["storage"] = {"root": storage_root}
    path.write_text(yaml.safe_dump(cfg))
    return path
