"""Checkpoints in the run's storage (local folder or S3): ``latest.pt`` and ``best.pt``.

Layout under ``<run>/checkpoints/``::

    latest.pt    model, optimizer, scheduler, grad scaler, iteration, RNG state of every worker
    best.pt      the same, at the evaluation with the best ``train.best_metric``
    latest.json  small index (iteration, metric, URIs) readable without torch

Writes are atomic (cvray.io.storage), so a worker killed mid-write leaves the previous
checkpoint intact. Reads use ``torch.load(weights_only=True)``: a checkpoint holds only tensors
and plain Python data (RNG states are stored as tensors / ints), never pickled objects.
"""
from __future__ import annotations

import io
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cvray.io import storage

__all__ = ["CHECKPOINT_VERSION", "CheckpointStore", "capture_rng", "restore_rng", "unwrap"]

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model under a DDP wrapper (checkpoints never carry the ``module.`` prefix)."""
    return model.module if hasattr(model, "module") and isinstance(
        model, torch.nn.parallel.DistributedDataParallel) else model


def capture_rng(augment_state: dict | None = None) -> dict[str, Any]:
    """RNG state of this process: torch (CPU and CUDA), Python, and the augmentation generator."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                             "augment": augment_state}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> dict | None:
    """Restore what :func:`capture_rng` saved; returns the augmentation generator state."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    return state.get("augment")


def _np_safe(obj: Any) -> Any:
    """Plain Python numbers for JSON / weights_only (numpy scalars are not allowed there)."""
    if isinstance(obj, dict):
        return {k: _np_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_np_safe(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


@dataclass
class CheckpointStore:
    """Reads and writes the checkpoints of one run (``<run_uri>/checkpoints``)."""

    uri: str

    @classmethod
    def for_run(cls, run_uri: str) -> "CheckpointStore":
        return cls(storage.join(run_uri, "checkpoints"))

    def path(self, name: str) -> str:
        return storage.join(self.uri, f"{name}.pt")

    def exists(self, name: str = "latest") -> bool:
        return storage.exists(self.path(name))

    def save(self, name: str, state: dict[str, Any]) -> float:
        """Write ``<name>.pt`` atomically; returns the seconds the write took."""
        t0 = time.perf_counter()
        buf = io.BytesIO()
        torch.save(_np_safe({"format_version": CHECKPOINT_VERSION, **state}), buf)
        storage.write_bytes(self.path(name), buf.getvalue())
        index = {"name": name, "iteration": state.get("iteration"), "uri": self.path(name),
                 "metrics": _np_safe(state.get("metrics") or {}), "bytes": buf.tell()}
        storage.write_json(storage.join(self.uri, f"{name}.json"), index)
        dt = time.perf_counter() - t0
        log.info("checkpoint %s at iteration %s written in %.2fs (%d bytes)", self.path(name),
                 state.get("iteration"), dt, buf.tell())
        return dt

    def load(self, name: str = "latest") -> dict[str, Any] | None:
        """The checkpoint ``name`` (``weights_only=True``), or None when there is none."""
        uri = self.path(name)
        if not storage.exists(uri):
            return None
        ckpt = torch.load(io.BytesIO(storage.read_bytes(uri)), map_location="cpu", weights_only=True)
        if ckpt.get("format_version") != CHECKPOINT_VERSION:
            raise ValueError(f"{uri}: checkpoint format {ckpt.get('format_version')} is not "
                             f"{CHECKPOINT_VERSION}")
        return ckpt
