"""Training stage of ``cvray demo``: a small Mask R-CNN on the synthetic data, 2 Ray Train workers.

``DEMO_TRAIN`` is the CPU-sized preset (``configs/demo_maskrcnn_cpu.yaml`` spells out the same
values). A user who sets any ``train.*`` key keeps their own train section instead.
"""
from __future__ import annotations

import time
from typing import Any

from cvray.train.config import TrainConfig

__all__ = ["DEMO_TRAIN", "demo_train", "demo_train_config"]

DEMO_TRAIN: dict[str, Any] = {
    "model": {"arch": "maskrcnn", "backbone": "small_resnet_fpn", "norm": "gn",
              "min_size": 128, "max_size": 128, "fpn_channels": 64, "box_head_dim": 256,
              "mask_head_dim": 64, "mask_head_layers": 2, "anchor_sizes": [8, 16, 32, 64, 128],
              "rpn_pre_nms_top_n_train": 300, "rpn_post_nms_top_n_train": 300,
              "rpn_pre_nms_top_n_test": 150, "rpn_post_nms_top_n_test": 150,
              "box_batch_size_per_image": 64},
    "augment": {"hflip_prob": 0.5, "scale_range": [0.9, 1.1], "pad_prob": 0.5},
    "optim": {"optimizer": "adamw", "lr": 0.002, "weight_decay": 0.0001, "schedule": "cosine",
              "warmup_iters": 30, "clip_grad_norm": 10.0},
    "max_iter": 400, "batch_size": 4, "eval_period": 200, "checkpoint_period": 200, "log_period": 10,
    "num_workers": 2, "cpus_per_worker": 1, "max_failures": 1, "torch_threads": 1,
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def demo_train_config(cfg: Any) -> TrainConfig:
    """The demo preset with whatever ``train.*`` the user set (``--config`` or overrides) on top:
    ``cvray demo train.max_iter=50`` trains the CPU preset for 50 steps, not the library's
    default R50-FPN at 800-1333 px."""
    user = cfg.train.model_dump(mode="json", exclude_unset=True)
    return TrainConfig.model_validate(_merge(DEMO_TRAIN, user))


def demo_train(run: Any, cfg: Any, synth: dict, *, on_progress=None) -> dict[str, Any]:
    """Train on ``synth["coco_root"]`` with Ray Train; returns AP and where the model is
    (``on_progress(done, total, **info)`` per iteration, as ``run_train`` gives it)."""
    from cvray.train.workflow import TrainInputs, run_train

    tcfg = demo_train_config(cfg)
    # the manifest's train section is what was trained (the preset + the user's train.*), so the
    # run is a model for predict / track / export like any training run
    run.update(config={**(run.manifest.get("config") or {}), "train": tcfg.model_dump(mode="json")})
    t0 = time.perf_counter()
    s = run_train(run, tcfg, TrainInputs(synth["coco_root"], seed=cfg.seed), ray=True, on_progress=on_progress)
    seconds = time.perf_counter() - t0
    m = s.get("metrics", {})
    return {
        "workers": s.get("workers"),
        "iterations": s.get("iterations"),
        "loss_first": s.get("loss_first"),
        "loss_last": s.get("loss_last"),
        "bbox_AP": m.get("bbox_AP"),
        "bbox_AP50": m.get("bbox_AP50"),
        "segm_AP": m.get("segm_AP"),
        "segm_AP50": m.get("segm_AP50"),
        "images_per_s": s.get("images_per_s"),
        "checkpoint": s.get("checkpoint"),
        "seconds": round(seconds, 1),
    }
