"""One interface over model backends: ``build_model(cfg) -> nn.Module``.

Every backend returns a module with torchvision's protocol, so the engine, checkpoints and
evaluation do not care which library built it:

* train mode: ``model(images, targets) -> {"loss_<part>": scalar tensor}``
* eval mode:  ``model(images) -> [{"boxes", "labels", "scores", "masks"?} | {"sem_seg"}]``

``images`` are float CHW tensors in [0, 1] (RGB); ``targets`` hold ``boxes`` (xyxy float),
``labels`` (int64, 1..num_classes), ``masks`` (uint8 NxHxW) or ``sem_seg`` (HxW int64).

Backends are a plug-in point: :data:`BACKENDS` maps a name to a factory (a registry is allowed
here by the style guide); each backend can also be used directly.
"""
from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

from torch import nn

from cvray.models.config import ModelConfig

__all__ = ["BACKENDS", "Backend", "BackendUnavailable", "build_model", "get_backend"]


class BackendUnavailable(ImportError):
    """The configured backend's library is not installed; the message says how to install it."""


@runtime_checkable
class Backend(Protocol):
    name: str

    def available(self) -> bool: ...

    def build(self, cfg: ModelConfig, *, semantic_loss: nn.Module | None = None) -> nn.Module: ...


def _torchvision() -> Backend:
    from cvray.models.torchvision_backend import TorchvisionBackend

    return TorchvisionBackend()


def _detectron2() -> Backend:
    from cvray.models.detectron2_backend import Detectron2Backend

    return Detectron2Backend()


def _onnx() -> Backend:
    from cvray.models.onnx_backend import OnnxBackend

    return OnnxBackend()


BACKENDS: dict[str, Callable[[], Backend]] = {"torchvision": _torchvision, "detectron2": _detectron2,
                                             "onnx": _onnx}


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]()
    except KeyError:
        raise ValueError(f"unknown model backend {name!r} (known: {', '.join(BACKENDS)})") from None


def build_model(cfg: ModelConfig, *, semantic_loss: nn.Module | None = None) -> nn.Module:
    """Build the model ``cfg`` describes, with its weights loaded when ``cfg.weights`` is set.

    Example::

        >>> from cvray.models import ModelConfig, build_model
        >>> m = build_model(ModelConfig(arch="fasterrcnn", backbone="mobilenet_v3_large_fpn",
        ...                             num_classes=3, min_size=128, max_size=128))
    """
    if cfg.num_classes is None:
        raise ValueError("model.num_classes is not set (training sets it from the dataset's categories)")
    backend = get_backend(cfg.backend)
    if not backend.available():
        raise BackendUnavailable(getattr(backend, "install_hint", f"backend {cfg.backend} is not installed"))
    return backend.build(cfg, semantic_loss=semantic_loss)
