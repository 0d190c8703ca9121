"""Ray Train: 2 DDP workers fed by Ray Data shards; a killed worker resumes from its checkpoint."""
from __future__ import annotations

import pytest

from cvray.config import load_config
from cvray.data.synth import CocoSynthConfig, make_coco
from cvray.io import storage
from cvray.runs import start_run
from cvray.train.checkpoint import CheckpointStore
from cvray.train.workflow import TrainInputs, run_train
from faults import FailOnce  # tests/faults.py: test-only fault injection

TINY = ["train.model.backbone=mobilenet_v3_large_fpn", "train.model.norm=gn",
        "train.model.min_size=64", "train.model.max_size=64", "train.model.fpn_channels=32",
        "train.model.box_head_dim=64", "train.model.mask_head_dim=16", "train.model.mask_head_layers=1",
        "train.model.anchor_sizes=[16,32,64]", "train.model.box_batch_size_per_image=32",
        "train.model.rpn_post_nms_top_n_train=100", "train.model.rpn_post_nms_top_n_test=50",
        "train.batch_size=2", "train.optim.optimizer=adamw", "train.optim.lr=0.001",
        "train.optim.warmup_iters=2", "train.tensorboard=false", "train.max_val_images=4",
        "train.num_workers=2", "train.cpus_per_worker=1", "train.max_failures=1"]


@pytest.fixture(scope="module")
def tiny_coco(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    cfg = CocoSynthConfig(categories=("circle", "rectangle"), objects_per_image=(1, 2),
                          size_range=(0.15, 0.3), crowd_prob=0.0)
    return make_coco(out, n_images=20, seed=4, image_size=(64, 64), config=cfg)["root"]


def test_killed_worker_resumes_from_latest_checkpoint_and_finishes(ray_session, tmp_path, tiny_coco):
    cfg = load_config(None, TINY + ["train.max_iter=6", "train.checkpoint_period=2", "train.eval_period=3"])
    marker = str(tmp_path / "killed.txt")
    progress = []
    with start_run("train", config=cfg, root=str(tmp_path / "runs"), seed=0) as run:
        out = run_train(run, cfg.train, TrainInputs(tiny_coco), ray=True,
                        extra_hooks=[FailOnce(iteration=3, marker=marker, rank=1)],
                        on_progress=lambda done, total, **info: progress.append((done, total, info)))
    # worker 1 died after iteration 3; the group restarted from latest.pt (iteration 2)
    assert storage.read_bytes(marker) == b"killed at iteration 3"
    assert out["start_iteration"] == 2 and out["iterations"] == 6 and out["workers"] == 2
    latest = CheckpointStore.for_run(run.uri).load("latest")
    assert latest["iteration"] == 6 and latest["world_size"] == 2
    assert set(latest["rng"]) == {0, 1}  # both workers' RNG states are kept
    assert not torch_equal(latest["rng"][0]["torch"], latest["rng"][1]["torch"])
    # evaluation ran on both workers' halves of val and was combined: all 4 images counted
    evals = run.read_table("eval_metrics").to_pylist()
    assert [e["iteration"] for e in evals] == [3, 6]
    per_class = run.read_table("per_class_ap").to_pylist()
    assert {r["iteration"] for r in per_class} == {3, 6}
    seeds = run.read_table("worker_seeds").to_pylist()
    assert [s["rank"] for s in seeds] == [0, 1] and seeds[0]["seed"] != seeds[1]["seed"]
    curves = run.read_table("train_curves").to_pylist()
    assert [c["iteration"] for c in curves] == [1, 2, 3, 4, 5, 6]
    # each step saw both workers' batches: images per step = 2 workers x batch 2
    assert all(c["images_per_s"] > 0 for c in curves)
    # Ray's own checkpoint index lives inside the run folder
    assert out["ray_checkpoint"].startswith(storage.resolve(run.path("ray"))[1])
    # the driver heard the main worker's progress (its progress file, polled while fit() ran)
    assert progress and progress[-1][:2] == (6, 6), progress
    assert any("loss" in info for _, _, info in progress) and "segm_AP" in progress[-1][2], progress


def torch_equal(a, b) -> bool:
    import torch

    return torch.equal(a, b)
