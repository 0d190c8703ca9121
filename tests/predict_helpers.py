"""Shared helpers for the predict tests: a tiny, deterministic torchvision detector on disk."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch


def tiny_model_config(tmp: Path, arch: str = "fasterrcnn", num_classes: int = 3, size: int = 64):
    """A small random-init detector saved to ``tmp`` so every process builds identical weights."""
    from cvray.models import ModelConfig, build_model

    cfg = ModelConfig(arch=arch, backbone="mobilenet_v3_large_fpn", num_classes=num_classes,
                      min_size=size, max_size=size, box_score_thresh=0.0, detections_per_img=20,
                      rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=20, fpn_channels=32,
                      box_head_dim=64, mask_head_dim=32, mask_head_layers=1)
    torch.manual_seed(0)
    model = build_model(cfg)
    path = tmp / f"{arch}-tiny.pt"
    torch.save({"model": model.state_dict()}, path)
    return cfg.model_copy(update={"weights": str(path), "strict_weights": True})


def write_images(folder: Path, n: int, seed: int = 0, size=(48, 80)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = rng.integers(0, 255, size + (3,), dtype=np.uint8)
        cv2.rectangle(img, (10, 8), (40, 30), (255, 255, 255), -1)
        p = folder / f"img_{i:03d}.png"
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths


def write_video(path: Path, n_frames: int, fps: float = 10.0, size=(64, 48)) -> Path:
    w, h = size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in range(n_frames):
        img = np.full((h, w, 3), 40, np.uint8)
        cv2.rectangle(img, (2 + 2 * f, 10), (22 + 2 * f, 30), (200, 200, 200), -1)
        vw.write(img)
    vw.release()
    return path
