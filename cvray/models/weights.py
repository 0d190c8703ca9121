"""Load user-supplied weights safely: local path, ``s3://`` URI or ``http(s)://`` URL.

Every path goes through ``torch.load(..., weights_only=True)`` (URLs through
``torch.hub.load_state_dict_from_url(..., weights_only=True)``, which caches the file in the
torch hub folder), so a weights file can never run code. Checkpoints written by cvray
(``{"model": state_dict, ...}``) and Detectron2/torchvision-style ``{"state_dict": ...}`` files
are unwrapped. Tensors whose shape differs from the model's (a new class count) are skipped and
reported unless ``strict=True`` -- the usual way to fine-tune from COCO weights.
"""
from __future__ import annotations

import io
import logging
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


def read_state_dict(source: str) -> dict[str, torch.Tensor]:
    """Read a state dict from a path, ``s3://`` URI or URL (``weights_only=True`` everywhere)."""
    try:
        if source.startswith(("http://", "https://")):
            obj = torch.hub.load_state_dict_from_url(source, map_location="cpu", progress=False,
                                                     weights_only=True)
        else:
            from cvray.io import storage

            obj = torch.load(io.BytesIO(storage.read_bytes(source)), map_location="cpu",
                             weights_only=True)
    except WeightsError:
        raise
    except Exception as exc:  # torch raises several types (UnpicklingError, RuntimeError, OSError)
        raise WeightsError(f"{source}: cannot load weights ({type(exc).__name__}: {exc})") from exc
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{source}: not a state dict of tensors (got {type(obj).__name__})")
    # DDP-saved weights carry a "module." prefix on every key.
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_into(module: nn.Module, source: str, *, strict: bool = False,
              ignore_prefixes: tuple[str, ...] = ()) -> LoadReport:
    """Load ``source`` into ``module``; returns what was loaded, missing and skipped.

    ``strict=True`` raises :class:`WeightsError` on any missing / unexpected / mis-shaped key.
    ``ignore_prefixes`` drops keys the model never has (e.g. ``fc.`` of an ImageNet ResNet).
    """
    state = read_state_dict(source)
    state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    own = module.state_dict()
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
