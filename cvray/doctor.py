"""Environment checklist (pure checks; the CLI renders them). Each check returns a :class:`Check`."""
from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Check", "REQUIRED_IMPORTS", "check_gpu", "check_imports", "check_opencv", "check_ray",
           "check_storage", "check_detectron2", "run_checks"]

REQUIRED_IMPORTS = {
    "torch": "torch", "torchvision": "torchvision", "ray": "ray", "numpy": "numpy",
    "pyarrow": "pyarrow", "cv2": "opencv-python-headless", "pycocotools": "pycocotools",
    "faster_coco_eval": "faster-coco-eval", "scipy": "scipy", "pydantic": "pydantic",
    "yaml": "pyyaml", "motmetrics": "motmetrics", "trackeval": "trackeval", "boto3": "boto3",
}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | fail | warn | skip
    detail: str
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.required and self.status == "fail"


def _version(dist: str, mod) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return getattr(mod, "__version__", "?")


def check_imports() -> list[Check]:
    out = []
    for mod_name, dist in REQUIRED_IMPORTS.items():
        try:
            mod = importlib.import_module(mod_name)
            out.append(Check(f"import {mod_name}", "ok", _version(dist, mod)))
        except Exception as exc:  # a broken install can raise anything at import time
            out.append(Check(f"import {mod_name}", "fail", f"{type(exc).__name__}: {exc}"))
    return out


def check_ray(ray_cfg=None, address: str | None = None) -> list[Check]:
    from cvray.raycluster import cluster_resources, ray_context

    try:
        t = time.time()
        with ray_context(ray_cfg, address=address) as ray:
            res = cluster_resources()
            val = ray.get(ray.remote(lambda: 40 + 2).remote(), timeout=60)
            gpu_checks = check_cluster_gpus()
        where = address or getattr(ray_cfg, "address", None) or os.environ.get("RAY_ADDRESS") or "local"
        r = res.get("resources", {})
        detail = (f"{where}: {res.get('nodes')} node(s), CPU={r.get('CPU', 0):g}, GPU={r.get('GPU', 0):g}, "
                  f"task ok={val == 42}, {time.time() - t:.1f}s")
        return [Check("ray cluster", "ok" if val == 42 else "fail", detail), *gpu_checks]
    except Exception as exc:
        return [Check("ray cluster", "fail", f"{type(exc).__name__}: {exc}")]


def check_gpu() -> list[Check]:
    import torch

    if not torch.cuda.is_available():
        return [Check("gpu", "skip", f"no CUDA GPU visible (torch {torch.__version__}, "
                                     f"built for CUDA {torch.version.cuda})", required=False)]
    out = []
    for i in range(torch.cuda.device_count()):
        name = torch.cuda.get_device_name(i)
        try:
            a = torch.randn(256, 256, device=f"cuda:{i}", dtype=torch.float32)
            ref = (a.cpu() @ a.cpu())
            err = float((a @ a).cpu().sub(ref).abs().max())
            ok = err < 1e-2
            out.append(Check(f"gpu {i}", "ok" if ok else "fail", f"{name}: matmul max err {err:.2e}"))
        except Exception as exc:
            out.append(Check(f"gpu {i}", "fail", f"{name}: {type(exc).__name__}: {exc}"))
    return out


def check_cluster_gpus(max_gpus: int = 16) -> list[Check]:
    """The same matmul sanity check on every GPU the connected Ray cluster offers."""
    import ray

    n = int(ray.cluster_resources().get("GPU", 0)) if ray.is_initialized() else 0
    if n == 0:
        return []

    @ray.remote(num_gpus=1)
    def _matmul() -> tuple[str, float]:
        import torch

        a = torch.randn(256, 256, device="cuda")
        return torch.cuda.get_device_name(0), float((a @ a).cpu().sub(a.cpu() @ a.cpu()).abs().max())

    out = []
    for i, (name, err) in enumerate(ray.get([_matmul.remote() for _ in range(min(n, max_gpus))], timeout=300)):
        out.append(Check(f"cluster gpu {i}", "ok" if err < 1e-2 else "fail", f"{name}: matmul max err {err:.2e}"))
    return out


def check_opencv() -> list[Check]:
    import cv2

    out = []
    img = (np.arange(64 * 48 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)
    for ext in (".jpg", ".png"):
        ok, buf = cv2.imencode(ext, img)
        dec = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        good = dec is not None and dec.shape == img.shape and (ext == ".jpg" or np.array_equal(dec, img))
        out.append(Check(f"opencv {ext[1:]} codec", "ok" if good else "fail",
                         f"encode/decode {'round trip' if good else 'failed'}"))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.mp4")
        w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
        for k in range(5):
            w.write(np.full((48, 64, 3), k * 40, np.uint8))
        w.release()
        cap = cv2.VideoCapture(path)
        n = 0
        while cap.read()[0]:
            n += 1
        cap.release()
        out.append(Check("opencv mp4 video", "ok" if n == 5 else "fail",
                         f"wrote 5 frames (mp4v), read back {n}"))
    return out


def check_storage(root: str) -> list[Check]:
    from cvray.io import storage

    uri = storage.join(root, "_doctor", uuid.uuid4().hex[:8] + ".bin")
    payload = os.urandom(1024)
    try:
        storage.write_bytes(uri, payload)
        back = storage.read_bytes(uri)
        storage.rm_tree(storage.join(root, "_doctor"))
        ok = back == payload
        return [Check("storage", "ok" if ok else "fail", f"{root}: write/read 1 KiB "
                                                         f"{'round trip ok' if ok else 'mismatch'}")]
    except Exception as exc:
        return [Check("storage", "fail", str(exc))]


D2_INSTALL = "https://detectron2.readthedocs.io/en/latest/tutorials/install.html; docs/detectron2.md"


def check_detectron2() -> list[Check]:
    """Is the Detectron2 backend *usable*, not just importable: its config system, a model-zoo
    config, and a tiny Mask R-CNN built through cvray's backend and run on one image. Each
    failure names its fix. (Optional backend: never a required check.)"""
    if importlib.util.find_spec("detectron2") is None:
        return [Check("detectron2", "skip", f"not installed (optional backend; see {D2_INSTALL})", required=False)]
    out: list[Check] = []
    try:
        d2 = importlib.import_module("detectron2")
        from detectron2.config import get_cfg

        get_cfg()
        out.append(Check("detectron2", "ok", getattr(d2, "__version__", "?"), required=False))
    except Exception as exc:  # a build against another torch fails here (undefined symbol ...)
        return [Check("detectron2", "fail", f"{type(exc).__name__}: {exc} -- rebuild it "
                      f"against this torch ({D2_INSTALL})", required=False)]
    try:
        importlib.import_module("detectron2.model_zoo")
    except ModuleNotFoundError as exc:
        if exc.name == "pkg_resources":
            out.append(Check("detectron2.model_zoo", "warn",
                             "imports pkg_resources, which setuptools >= 81 removed; cvray resolves "
                             "model-zoo configs without it, but Detectron2's own tools need "
                             "`pip install 'setuptools<81'`", required=False))
        else:
            out.append(Check("detectron2.model_zoo", "warn", f"{type(exc).__name__}: {exc}", required=False))
    try:
        import torch

        from cvray.models import ModelConfig, build_model

        cfg = ModelConfig(backend="detectron2", arch="maskrcnn",
                          d2_config="COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
                          d2_opts=("MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64,
                                   "MODEL.DEVICE", "cpu"), num_classes=2, min_size=64, max_size=64)
        t = time.time()
        model = build_model(cfg).eval()
        with torch.no_grad():
            (pred,) = model([torch.rand(3, 64, 64)])
        out.append(Check("detectron2 tiny Mask R-CNN", "ok",
                         f"built and ran on one image in {time.time() - t:.1f} s ({len(pred['boxes'])} boxes)",
                         required=False))
    except Exception as exc:
        out.append(Check("detectron2 tiny Mask R-CNN", "fail", f"{type(exc).__name__}: {exc}", required=False))
    return out


def run_checks(root: str, ray_cfg=None, address: str | None = None,
               on_check: Callable[[Check], None] | None = None) -> list[Check]:
    checks: list[Check] = []
    for fn in (check_imports, check_gpu, check_opencv, lambda: check_storage(root),
               check_detectron2, lambda: check_ray(ray_cfg, address)):
        for c in fn():
            checks.append(c)
            if on_check:
                on_check(c)
    return checks
