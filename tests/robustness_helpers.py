"""A small trained model for the robustness tests: the learning test's recipe (the demo's CPU
Mask R-CNN, 80 steps on the easy synthetic set; box AP50 0.21 / mask 0.25 on its val split through
cvray's inference path, measured -- enough to fall under corruption), plus the set itself."""
from __future__ import annotations

from pathlib import Path

from cvray.runs import start_run
from cvray.train.config import TrainConfig
from cvray.train.demo import DEMO_TRAIN
from cvray.train.workflow import TrainInputs, run_train
from tests.tune_helpers import easy_dataset


def trained_model(work: Path) -> tuple[str, str]:
    """(train run URI, COCO root) -- trained in this process, no Ray."""
    root = easy_dataset(work / "easy")
    cfg = TrainConfig.model_validate({
        **DEMO_TRAIN,
        "optim": {**DEMO_TRAIN["optim"], "schedule": "constant", "warmup_iters": 20},
        "max_iter": 80, "batch_size": 4, "eval_period": 0, "checkpoint_period": 80,
        "tensorboard": False, "torch_threads": 1,
    })
    with start_run("train", config={"train": cfg.model_dump(mode="json")}, root=str(work / "runs"), seed=0) as run:
        run_train(run, cfg, TrainInputs(root, seed=0), ray=False)
    return run.uri, root
