"""Learning diagnostics: hand-built curves with known answers, and one real run that does not learn."""
from __future__ import annotations

import numpy as np
import pytest

from cvray.data.synth import make_coco
from cvray.io import storage
from cvray.runs import start_run
from cvray.train.config import TrainConfig
from cvray.train.demo import DEMO_TRAIN
from cvray.train.diagnostics import anchor_coverage, learning_issues
from cvray.train.workflow import TrainInputs, run_train


def _curves(losses, positives=3):
    return [{"iteration": i + 1, "loss": float(v), "positives": positives} for i, v in enumerate(losses)]


def test_anchor_coverage_is_the_iou_of_centred_shapes():
    best = anchor_coverage(np.array([[8, 8], [4, 4], [16, 8]]), sizes=[8], ratios=[1.0])
    np.testing.assert_allclose(best, [1.0, 16 / 64, 64 / 128])
    # ratio 0.5 (h/w): w = 8 / sqrt(.5) = 11.31, h = 5.66 -> a 12x6 box overlaps it by 64 / 72
    np.testing.assert_allclose(anchor_coverage(np.array([[12, 6]]), sizes=[8], ratios=[0.5, 1.0]), [64 / 72])


def kw(**extra):
    return {"warmup_iters": 2, "min_loss_drop": 0.2, "window": 5, "metric": "bbox_AP", **extra}


def test_a_falling_loss_gives_no_rows_and_a_flat_one_is_named():
    assert learning_issues(_curves(np.linspace(3, 1, 30)), [{"iteration": 30, "bbox_AP": 0.3}], **kw()) == []
    rows = learning_issues(_curves(np.full(30, 2.0) + 0.01 * np.sin(np.arange(30))), [], **kw())
    assert [r.rule for r in rows] == ["train.loss_not_falling"]
    assert rows[0].severity == "warning" and "min_loss_drop=20%" in rows[0].message
    # 19 % drop is still "not falling" at 20 %; 21 % is fine
    assert learning_issues(_curves([1.0] * 7 + [0.81] * 5), [], **kw())
    assert not learning_issues(_curves([1.0] * 7 + [0.79] * 5), [], **kw())


def test_no_positives_zero_ap_and_anchor_mismatch():
    curves = _curves(np.linspace(3, 1, 30))
    curves[4]["positives"] = 0
    rows = learning_issues(curves, [{"iteration": 30, "bbox_AP": 0.0}], **kw(
        box_wh=np.full((10, 2), 8.0), anchor_sizes=[32, 64, 128, 256, 512]))
    assert sorted(r.rule for r in rows) == ["train.anchor_mismatch", "train.no_positives", "train.zero_ap"]
    assert "iteration 5" in next(r.message for r in rows if r.rule == "train.no_positives")
    ok = learning_issues(_curves(np.linspace(3, 1, 30)), [], **kw(box_wh=np.full((10, 2), 8.0), anchor_sizes=[8, 16]))
    assert ok == []


@pytest.mark.slow
def test_a_run_that_cannot_learn_gets_warning_rows(tmp_path):
    root = make_coco(tmp_path / "d", n_images=12, seed=0)["root"]
    cfg = TrainConfig.model_validate({
        **DEMO_TRAIN, "model": {**DEMO_TRAIN["model"], "anchor_sizes": [64, 128, 256, 512, 1024]},
        "optim": {**DEMO_TRAIN["optim"], "lr": 1e-9, "warmup_iters": 2}, "max_iter": 24, "batch_size": 2,
        "eval_period": 0, "checkpoint_period": 24, "tensorboard": False, "torch_threads": 1,
        "diagnostics": {"window": 5},
    })
    with start_run("train", config=cfg, root=str(tmp_path / "runs"), seed=0) as run:
        run_train(run, cfg, TrainInputs(root, seed=0), ray=False)
    rules = {r["rule"] for r in run.read_table("issues").to_pylist()}
    assert {"train.loss_not_falling", "train.anchor_mismatch"} <= rules, rules
    assert storage.read_bytes(run.path("artifacts", "learning_curves.png"))[:4] == b"\x89PNG"
