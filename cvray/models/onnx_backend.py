"""The ``onnx`` model backend: an exported detector (``cvray export onnx``) run by onnxruntime.

``ModelConfig(backend="onnx", weights="…/model.onnx", arch=…, num_classes=…)`` builds an
:class:`OnnxDetector`, an ``nn.Module`` with the torchvision inference protocol
(``model([CHW float tensors in [0, 1]]) -> [{"boxes", "labels", "scores", "masks"?}]``), so every
stage that runs a model -- ``cvray predict``, ``robustness``, ``calibrate``, ``latency``,
tracking -- runs the exported one with no change. Eval only: a call with targets raises.

The graph takes one image (``image``: float32 ``3 x H x W``, H and W dynamic): torchvision's R-CNN
export is batch 1, so a list of N images is N ``session.run`` calls. The post-processing baked into
the graph (score threshold, detections per image, RPN top-n) is the one the model was exported
with; ``predict.postprocess`` still applies on top.

Execution providers: CUDA when onnxruntime has it (``onnxruntime-gpu``) and the module is moved to
a CUDA device (the Predictor does so when torch sees a GPU), else CPU. Intra-op threads: torch's
thread count when the session is created (the Predictor sets ``torch.set_num_threads`` before it
builds the model), so ``predict.torch_threads`` / ``robustness.torch_threads`` hold for both.

The ONNX file carries the cvray model config it was exported from in its metadata
(``cvray.model_config``, :func:`read_model_config`), so a bare ``.onnx`` given as ``--model``
knows its architecture and classes.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from torch import nn

from cvray.models.config import ModelConfig

__all__ = ["METADATA_KEY", "OnnxBackend", "OnnxDetector", "read_model_config", "session_providers"]

METADATA_KEY = "cvray.model_config"
INPUT_NAME = "image"


def session_providers(device: str | torch.device | None = None) -> list[str]:
    """onnxruntime providers for ``device``: CUDA first when asked for and available, CPU always."""
    import onnxruntime as ort

    dev = torch.device(device) if device is not None else torch.device("cpu")
    have = ort.get_available_providers()
    if dev.type == "cuda" and "CUDAExecutionProvider" in have:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _read(uri: str) -> bytes:
    from cvray.io import storage

    return storage.read_bytes(uri)


def read_model_config(uri: str) -> dict[str, Any] | None:
    """The cvray model config (a dict) stored in an exported ONNX file's metadata, or None."""
    import onnx

    try:
        model = onnx.load_from_string(_read(uri))
    except Exception:  # noqa: BLE001 - not an ONNX file: the caller says so
        return None
    for p in model.metadata_props:
        if p.key == METADATA_KEY:
            return json.loads(p.value)
    return None


class OnnxDetector(nn.Module):
    """An exported detector behind torchvision's eval protocol (see the module doc)."""

    def __init__(self, uri: str, *, task: str = "instance", threads: int | None = None):
        super().__init__()
        self.uri, self.task = uri, task
        self._bytes = _read(uri)
        self._threads = threads
        self._device = torch.device("cpu")
        self._session = None
        self._make_session()

    def _make_session(self) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(self._threads or torch.get_num_threads())
        so.inter_op_num_threads = 1
        so.log_severity_level = 3  # onnxruntime's own warnings (constant folding notes) stay quiet
        self._session = ort.InferenceSession(self._bytes, so, providers=session_providers(self._device))
        self.output_names = [o.name for o in self._session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def _apply(self, fn, recurse: bool = True):  # .to(device) / .cuda(): follow it with the providers
        probe = fn(torch.zeros(()))
        if probe.device != self._device:
            self._device = probe.device
            self._make_session()
        return super()._apply(fn, recurse)

    def forward(self, images: list[torch.Tensor], targets: Any = None) -> list[dict[str, torch.Tensor]]:
        if targets is not None or self.training:
            raise RuntimeError("an ONNX model (model.backend=onnx) runs inference only; train the torch model")
        outs = []
        for img in images:
            x = img.detach().to("cpu", torch.float32).contiguous().numpy()
            res = self._session.run(None, {INPUT_NAME: x})
            d = {name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in zip(self.output_names, res)}
            if "labels" in d:
                d["labels"] = d["labels"].to(torch.int64)
            outs.append({k: v.to(img.device) for k, v in d.items()})
        return outs

    def __getstate__(self):  # picklable (Ray): the bytes travel, the session is rebuilt
        state = self.__dict__.copy()
        state["_session"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._make_session()


class OnnxBackend:
    """``model.backend=onnx``: ``model.weights`` is the ``.onnx`` file (local path or URI)."""

    name = "onnx"
    install_hint = "the onnx backend needs onnxruntime: pip install 'onnxruntime>=1.20,<1.32'"

    def available(self) -> bool:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return False
        return True

    def build(self, cfg: ModelConfig, *, semantic_loss: nn.Module | None = None) -> nn.Module:
        if cfg.task == "semantic":
            raise ValueError("model.backend=onnx runs the exported detection / instance models only")
        if not cfg.weights:
            raise ValueError("model.backend=onnx needs model.weights (the .onnx file)")
        return OnnxDetector(cfg.weights, task=cfg.task)
