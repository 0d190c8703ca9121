"""Load user-supplied weights safely: local path, ``s3://`` URI or ``http(s)://`` URL.

Every path goes through ``torch.load(..., weights_only=True)`` (URLs through
``torch.hub.load_state_dict_from_url(..., weights_only=True)``, which caches the file in the
torch hub folder), so a weights file can never run code. Checkpoints written by cvray
(``{"model": state_dict, ...}``) and Detectron2/torchvision-style ``{"state_dict": ...}`` files
are unwrapped; Detectron2's model-zoo ``.pkl`` files (a pickled ``{"model": {name: ndarray}}``)
are read with an unpickler that allows NumPy arrays and plain containers and refuses every other
global (torch's ``weights_only`` reader handles neither NumPy nor pickle protocols above 2), and
their arrays become tensors. A key prefix the model does not have (``module.`` from DDP, or
``model.`` from cvray's Detectron2 wrapper) is stripped when every key carries it. Tensors whose shape differs from the model's (a new class count) are skipped and
reported unless ``strict=True`` -- the usual way to fine-tune from COCO weights.
"""
from __future__ import annotations

import io
import logging
import pickle
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["WeightsError", "LoadReport", "read_state_dict", "load_into"]

log = logging.getLogger(__name__)


class WeightsError(RuntimeError):
    """A weights file could not be read or does not fit the model; names the source."""


@dataclass(frozen=True)
class LoadReport:
    source: str
    loaded: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings and NumPy arrays -- and refuses every other global,
    so a ``.pkl`` weights file can never run code (the same guarantee as ``weights_only=True``,
    which only reads pickle protocol 2 and no NumPy)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED or (module.startswith("numpy") and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a weights file")


def read_state_dict(source: str) -> dict[str, torch.Tensor]:
    """Read a state dict from a path, ``s3://`` URI or URL (``weights_only=True`` everywhere)."""
    try:
        if source.startswith(("http://", "https://")):
            obj = torch.hub.load_state_dict_from_url(source, map_location="cpu", progress=False,
                                                     weights_only=True)
        else:
            from cvray.io import storage

            data = io.BytesIO(storage.read_bytes(source))
            if source.endswith(".pkl"):  # Detectron2 model zoo: a plain pickle of NumPy arrays
                obj = _NumpyOnlyUnpickler(data, encoding="latin1").load()
            else:
                obj = torch.load(data, map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except Exception as exc:  # torch raises several types (UnpicklingError, RuntimeError, OSError)
        raise WeightsError(f"{source}: cannot load weights ({type(exc).__name__}: {exc})") from exc
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if isinstance(obj, dict):
        import numpy as np

        obj = {k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
               for k, v in obj.items()}
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{source}: not a state dict of tensors (got {type(obj).__name__})")
    # DDP-saved weights carry a "module." prefix on every key.
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_into(module: nn.Module, source: str, *, strict: bool = False,
              ignore_prefixes: tuple[str, ...] = (), strip_prefixes: tuple[str, ...] = ()) -> LoadReport:
    """Load ``source`` into ``module``; returns what was loaded, missing and skipped.

    ``strict=True`` raises :class:`WeightsError` on any missing / unexpected / mis-shaped key.
    ``ignore_prefixes`` drops keys the model never has (e.g. ``fc.`` of an ImageNet ResNet).
    ``strip_prefixes``: a prefix carried by every key of the file and by none of the model's is
    removed (``model.``: a cvray Detectron2 checkpoint holds the wrapper's weights, Detectron2's
    own files the inner model's).
    """
    state = read_state_dict(source)
    state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    own = module.state_dict()
    for prefix in strip_prefixes:
        if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in own):
            state = {k[len(prefix):]: v for k, v in state.items()}
    mismatch = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if mismatch and strict:
        raise WeightsError(f"{source}: shapes differ from the model for {mismatch[:5]}"
                           f"{' ...' if len(mismatch) > 5 else ''}")
    state = {k: v for k, v in state.items() if k not in mismatch}
    result = module.load_state_dict(state, strict=False)
    report = LoadReport(source=source, loaded=len(state) - len(result.unexpected_keys),
                        missing=list(result.missing_keys), unexpected=list(result.unexpected_keys),
                        shape_mismatch=mismatch)
    if strict and (report.missing or report.unexpected):
        raise WeightsError(f"{source}: missing keys {report.missing[:5]}, unexpected keys "
                           f"{report.unexpected[:5]} (strict loading)")
    if report.loaded == 0:
        raise WeightsError(f"{source}: no tensor matches the model (wrong architecture?)")
    log.info("loaded %d tensors from %s (missing %d, unexpected %d, shape-mismatch skipped %d)",
             report.loaded, source, len(report.missing), len(report.unexpected), len(mismatch))
    return report
