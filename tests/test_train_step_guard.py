"""The step guard (torchvision backend; the same engine runs Detectron2): a step whose gradient
norm is non-finite while the loss is finite -- what frozen-BN Detectron2 at lr 0.02 produced,
loss 2.2e36 with grad norm inf -- is skipped: weights, optimizer and LR schedule untouched,
``skipped=1`` in the curves; too many in a row stop the run with the reason; no non-finite value
ever reaches a checkpoint."""
from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from cvray.config import load_config
from cvray.runs import start_run
from cvray.train.checkpoint import CheckpointStore
from cvray.train.engine import NonFiniteLossError
from cvray.train.hooks import Hook
from cvray.train.workflow import TrainInputs, run_train
from test_train_engine import TINY, tiny_coco  # noqa: F401  (the fixture)

D2 = ["train.model.backend=detectron2", "train.model.d2_config=COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
      "train.model.d2_opts=[MODEL.RESNETS.DEPTH,18,MODEL.RESNETS.RES2_OUT_CHANNELS,64,MODEL.RESNETS.NORM,GN,"
      "MODEL.FPN.NORM,GN]", "train.model.min_size=64", "train.model.max_size=64", "train.batch_size=2",
      "train.eval_period=0", "train.tensorboard=false", "train.optim.optimizer=adamw", "train.optim.lr=0.0005",
      "train.optim.schedule=cosine"]
BACKENDS = {"torchvision": TINY, "detectron2": D2}


class InfGradAt(Hook):
    """Multiplies every gradient by inf during the steps ``iterations`` (1-based): the loss stays
    finite, the gradient norm does not."""

    def __init__(self, iterations):
        self.iterations, self.state, self.handles = set(iterations), None, []

    def before_train(self, state):
        self.state = state
        for p in state.model.parameters():
            if p.requires_grad:
                self.handles.append(p.register_hook(
                    lambda g: g * math.inf if self.state.iteration + 1 in self.iterations else g))

    def after_train(self, state):
        for h in self.handles:
            h.remove()


def _finite(ckpt) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in ckpt["model"].values()
               if torch.is_tensor(v) and v.is_floating_point())


@pytest.mark.parametrize("backend", ["torchvision", pytest.param("detectron2", marks=pytest.mark.skipif(
    importlib.util.find_spec("detectron2") is None, reason="Detectron2 is not installed (docs/detectron2.md)"))])
def test_an_inf_gradient_is_skipped_and_never_reaches_the_weights(backend, tmp_path, tiny_coco):  # noqa: F811
    cfg = load_config(None, BACKENDS[backend] + ["train.max_iter=6", "train.checkpoint_period=1"])
    with start_run("train", config=cfg, root=str(tmp_path), seed=0) as run:
        out = run_train(run, cfg.train, TrainInputs(tiny_coco), ray=False, extra_hooks=[InfGradAt({3})])
    curves = {r["iteration"]: r for r in run.read_table("train_curves").to_pylist()}
    assert [curves[i]["skipped"] for i in range(1, 7)] == [0, 0, 1, 0, 0, 0]
    assert not math.isfinite(curves[3]["grad_norm"]) and math.isfinite(curves[3]["loss"])
    assert curves[4]["lr"] == curves[3]["lr"] != curves[2]["lr"]  # the schedule did not advance at 3
    assert out["iterations"] == 6
    store = CheckpointStore.for_run(run.uri)
    assert _finite(store.load("latest")) and store.load("latest")["iteration"] == 6


def test_too_many_skips_in_a_row_stop_the_run_with_the_reason(tmp_path, tiny_coco):  # noqa: F811
    cfg = load_config(None, TINY + ["train.max_iter=8", "train.checkpoint_period=1",
                                    "train.optim.max_skipped_steps=2"])
    with pytest.raises(NonFiniteLossError) as err:
        with start_run("train", config=cfg, root=str(tmp_path), seed=0) as run:
            run_train(run, cfg.train, TrainInputs(tiny_coco), ray=False, extra_hooks=[InfGradAt({2, 3, 4, 5})])
    msg = str(err.value)
    assert "non-finite gradient norm at iteration 2" in msg and "3 consecutive step(s) skipped" in msg
    assert "latest.pt (iteration 1)" in msg
    good = CheckpointStore.for_run(run.uri).load("latest")
    assert good["iteration"] == 1 and _finite(good)


def test_a_non_finite_weight_is_never_written_to_a_checkpoint(tmp_path, tiny_coco):  # noqa: F811
    class PoisonWeights(Hook):  # NaN weights from outside the step (the guard's last line)
        def after_step(self, state, logs):
            if state.iteration == 2:
                with torch.no_grad():
                    next(state.model.parameters()).fill_(float("nan"))

    cfg = load_config(None, TINY + ["train.max_iter=6", "train.checkpoint_period=1",
                                    "train.optim.max_skipped_steps=0"])
    hooks = [PoisonWeights()]
    with pytest.raises(NonFiniteLossError):
        with start_run("train", config=cfg, root=str(tmp_path), seed=0) as run:
            run_train(run, cfg.train, TrainInputs(tiny_coco), ray=False, extra_hooks=hooks)
    assert _finite(CheckpointStore.for_run(run.uri).load("latest"))
