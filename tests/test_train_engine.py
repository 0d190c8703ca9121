"""The plain training loop (no Ray): exact resume, NaN/inf guard, checkpoints on S3, outputs."""
from __future__ import annotations

import pytest
import torch

from cvray.config import load_config
from cvray.data.synth import CocoSynthConfig, make_coco
from cvray.io import storage
from cvray.runs import start_run
from cvray.train.checkpoint import CheckpointStore
from cvray.train.engine import NonFiniteLossError
from cvray.train.hooks import Hook
from cvray.train.workflow import TrainInputs, run_train

TINY = ["train.model.backbone=mobilenet_v3_large_fpn", "train.model.norm=gn",
        "train.model.min_size=64", "train.model.max_size=64", "train.model.fpn_channels=32",
        "train.model.box_head_dim=64", "train.model.mask_head_dim=16", "train.model.mask_head_layers=1",
        "train.model.anchor_sizes=[16,32,64]", "train.model.box_batch_size_per_image=32",
        "train.model.rpn_post_nms_top_n_train=100", "train.model.rpn_post_nms_top_n_test=50",
        "train.batch_size=2", "train.checkpoint_period=2", "train.eval_period=0",
        "train.optim.optimizer=adamw", "train.optim.lr=0.001", "train.optim.schedule=cosine",
        "train.optim.warmup_iters=2", "train.augment.hflip_prob=0.5", "train.augment.scale_range=[0.8,1.2]",
        "train.tensorboard=false", "train.max_val_images=2", "train.torch_threads=1"]


@pytest.fixture(scope="module")
def tiny_coco(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    cfg = CocoSynthConfig(categories=("circle", "rectangle"), objects_per_image=(1, 2),
                          size_range=(0.15, 0.3), crowd_prob=0.0)
    return make_coco(out, n_images=16, seed=3, image_size=(64, 64), config=cfg)["root"]


class StopAt(Hook):
    """Simulates a run stopped from outside (pre-emption, Ctrl-C) right after an iteration."""

    def __init__(self, iteration):
        self.iteration = iteration

    def after_step(self, state, logs):
        if state.iteration == self.iteration:
            raise KeyboardInterrupt(f"stopped at {self.iteration}")


class PoisonAt(Hook):
    """Makes the next loss NaN by writing NaN into a weight after ``iteration``."""

    def __init__(self, iteration):
        self.iteration = iteration

    def after_step(self, state, logs):
        if state.iteration == self.iteration:
            with torch.no_grad():
                next(state.model.parameters()).fill_(float("nan"))


def _final_weights(run_uri):
    return CheckpointStore.for_run(run_uri).load("latest")


def test_resume_after_stop_continues_at_same_iteration_lr_and_weights(tmp_path, tiny_coco):
    cfg = load_config(None, TINY + ["train.max_iter=6"])
    root = str(tmp_path / "runs")
    with start_run("train", config=cfg, root=root, seed=0) as ref_run:
        ref = run_train(ref_run, cfg.train, TrainInputs(tiny_coco), ray=False)
    assert ref["iterations"] == 6

    with pytest.raises(KeyboardInterrupt):
        with start_run("train", config=cfg, root=root, seed=0) as run:
            run_train(run, cfg.train, TrainInputs(tiny_coco), ray=False, extra_hooks=[StopAt(4)])
    stopped = CheckpointStore.for_run(run.uri).load("latest")
    assert stopped["iteration"] == 4

    resume_cfg = load_config(None, TINY + ["train.max_iter=6", "train.resume=true"])
    with start_run("train", config=resume_cfg, root=root, seed=0, run_id=run.id) as run2:
        out = run_train(run2, resume_cfg.train, TrainInputs(tiny_coco), ray=False)
    assert out["start_iteration"] == 4 and out["iterations"] == 6

    curves = {r["iteration"]: r for r in run2.read_table("train_curves").to_pylist()}
    ref_curves = {r["iteration"]: r for r in ref_run.read_table("train_curves").to_pylist()}
    assert sorted(curves) == [1, 2, 3, 4, 5, 6]  # history before the stop is kept
    for it in (5, 6):  # the same learning rate and the same loss at the same iteration
        assert curves[it]["lr"] == pytest.approx(ref_curves[it]["lr"], rel=1e-12)
        assert curves[it]["loss"] == pytest.approx(ref_curves[it]["loss"], rel=1e-4)
    # cosine schedule really moved: the lr at 5 differs from the peak
    assert curves[5]["lr"] < 0.001
    a, b = _final_weights(ref_run.uri), _final_weights(run2.uri)
    assert a["iteration"] == b["iteration"] == 6
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 6
    for k in a["model"]:
        assert torch.allclose(a["model"][k].float(), b["model"][k].float(), atol=1e-5), k


def test_nan_guard_stops_with_message_and_keeps_last_good_checkpoint(tmp_path, tiny_coco):
    cfg = load_config(None, TINY + ["train.max_iter=8"])
    with pytest.raises(NonFiniteLossError) as err:
        with start_run("train", config=cfg, root=str(tmp_path), seed=0) as run:
            run_train(run, cfg.train, TrainInputs(tiny_coco), ray=False, extra_hooks=[PoisonAt(3)])
    msg = str(err.value)
    assert "non-finite loss at iteration 4" in msg
    assert "latest.pt (iteration 2)" in msg
    good = CheckpointStore.for_run(run.uri).load("latest")
    assert good["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in good["model"].values() if v.is_floating_point())
    manifest = storage.read_json(run.path("manifest.json"))
    assert manifest["status"] == "failed" and "non-finite" in manifest["error"]


def test_checkpoints_and_tables_on_s3(s3_bucket, tiny_coco):
    cfg = load_config(None, TINY + ["train.max_iter=2", "train.eval_period=1", "train.tensorboard=true"])
    with start_run("train", config=cfg, root=s3_bucket + "/runs", seed=0) as run:
        out = run_train(run, cfg.train, TrainInputs(tiny_coco), ray=False)
    store = CheckpointStore.for_run(run.uri)
    assert store.uri.startswith("s3://")
    latest, best = store.load("latest"), store.load("best")
    assert latest["iteration"] == 2 and best["iteration"] in (1, 2)
    assert set(latest["rng"]) == {0} and "optimizer" in latest and "scheduler" in latest
    # per-class AP written at every evaluation (iterations 1 and 2), box and mask
    per_class = run.read_table("per_class_ap").to_pylist()
    assert {r["iteration"] for r in per_class} == {1, 2}
    assert {r["iou_type"] for r in per_class} == {"bbox", "segm"}
    assert {r["name"] for r in per_class} == {"circle", "rectangle"}
    evals = run.read_table("eval_metrics").to_pylist()
    assert [r["iteration"] for r in evals] == [1, 2] and "segm_AP" in evals[0]
    assert out["metrics"]["segm_AP"] == pytest.approx(evals[-1]["segm_AP"])
    assert storage.read_bytes(run.path("artifacts", "learning_curves.png"))[:4] == b"\x89PNG"
    assert any("events.out.tfevents" in f for f in storage.list_files(run.path("tensorboard")))


def test_semantic_training_reports_miou_per_class_and_ignores_crowd(tmp_path, tiny_coco):
    cfg = load_config(None, [
        "train.model.arch=lraspp", "train.model.backbone=mobilenet_v3_large", "train.loss.kind=ce_dice",
        "train.loss.class_weights=[0.5,1.0,1.0]", "train.batch_size=2", "train.max_iter=2",
        "train.eval_period=0", "train.checkpoint_period=2", "train.tensorboard=false",
        "train.augment.crop_size=[48,48]", "train.optim.lr=0.01"])
    with start_run("train", config=cfg, root=str(tmp_path), seed=0) as run:
        out = run_train(run, cfg.train, TrainInputs(tiny_coco), ray=False)
    assert out["task"] == "semantic" and out["best_metric_name"] == "mIoU"
    assert 0.0 <= out["metrics"]["mIoU"] <= 1.0 and 0.0 <= out["metrics"]["mDice"] <= 1.0
    rows = run.read_table("per_class_iou").to_pylist()
    assert [r["name"] for r in rows] == ["background", "circle", "rectangle"]
    assert CheckpointStore.for_run(run.uri).load("best")["metric_name"] == "mIoU"
