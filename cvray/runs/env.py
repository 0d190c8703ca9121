"""What a run records about where it ran: package versions, accelerators, git SHA, Ray resources."""
from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["environment_info", "git_info"]

_PACKAGES = ("cvray", "torch", "torchvision", "ray", "numpy", "pyarrow", "opencv-python-headless",
             "pycocotools", "faster-coco-eval", "motmetrics", "trackeval", "pydantic", "scipy")


def _version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def git_info(start: str | Path | None = None) -> dict[str, Any]:
    """SHA and dirty flag of the git checkout holding ``start`` (the cwd, else cvray's source)."""
    for where in (start, Path.cwd(), Path(__file__).resolve().parents[2]):
        if where is None:
            continue
        try:
            sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                                 text=True, timeout=5)
            if sha.returncode != 0:
                continue
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                   cwd=where, capture_output=True, text=True, timeout=5)
            return {"sha": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip()), "path": str(where)}
        except (OSError, subprocess.SubprocessError):
            continue
    return {"sha": None, "dirty": None, "path": None}


def accelerator_info() -> dict[str, Any]:
    info: dict[str, Any] = {"cuda": None, "cudnn": None, "gpus": []}
    try:
        import torch

        info["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            info["cudnn"] = torch.backends.cudnn.version()
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info


def environment_info() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in _PACKAGES},
        **accelerator_info(),
    }
