"""What ``--model`` names, as a :class:`~cvray.models.ModelConfig` (pure: storage reads, no Ray).

``resolve_model(spec, model_cfg, num_classes)`` accepts

* a training run folder/URI (``manifest.json`` + ``checkpoints/best.pt`` or ``latest.pt``; a
  ``cvray tune`` run gives its best trial's model, from its ``best_config.yaml``): the
  ``train.model`` config it trained and its checkpoint;
* a checkpoint file (``.pt``/``.pth``): loaded into the network ``model_cfg`` describes
  (``predict.model``);
* an architecture name (``fasterrcnn``, ``maskrcnn``, ``retinanet``, ``fcos``), optionally
  ``ARCH:BACKBONE``: untrained unless ``model_cfg.weights`` is given;
* a ``cvray export onnx`` run folder/URI (its ``artifacts/export/model.onnx``, run by the ``onnx``
  backend), ``RUN:int8`` (its ``model.int8.onnx``) or ``RUN:fp32``, or an exported ``.onnx`` file
  (its architecture and classes from the file's metadata).

Used by ``cvray predict`` and ``cvray track --video``.
"""
from __future__ import annotations

import os

from cvray.runs.errors import InputError

__all__ = ["ModelSpecError", "require_num_classes", "resolve_model", "run_categories"]


class ModelSpecError(InputError):
    """``--model`` names nothing usable; the message names the spec and what is missing."""


def run_categories(spec: str) -> list[int] | None:
    """Sorted category ids of the dataset a training run was trained on (its manifest's
    ``dataset.train`` annotations), or None when ``spec`` is not a run or they are unreadable."""
    from cvray.data.coco import DatasetError, load_coco
    from cvray.io import storage

    spec = _export_base(spec)[0]
    man = storage.join(spec, "manifest.json")
    if not storage.exists(man):
        return None
    manifest = storage.read_json(man)
    if manifest.get("command") == EXPORT_COMMAND and storage.exists(_export_file(spec, "config")):
        ids = storage.read_json(_export_file(spec, "config")).get("category_ids")
        if ids:
            return sorted(int(i) for i in ids)
    ann = (manifest.get("dataset") or {}).get("train")
    if not ann:
        return None
    try:
        return sorted(int(c["id"]) for c in load_coco(ann)["categories"])
    except (DatasetError, storage.StorageError):
        return None


def resolve_model(spec: str, model_cfg, num_classes: int | None):
    """(ModelConfig, source description) for the ``--model`` argument."""
    from cvray.io import storage
    from cvray.models import ModelConfig

    updates: dict = {}
    exported = _resolve_export(spec, model_cfg, num_classes)
    if exported is not None:
        return exported
    if storage.exists(storage.join(spec, "manifest.json")):
        manifest = storage.read_json(storage.join(spec, "manifest.json"))
        raw = (manifest.get("config") or {}).get("train", {}).get("model")
        if manifest.get("command") == "tune" and storage.exists(storage.join(spec, "best_config.yaml")):
            import yaml  # a search's model is its best trial's (the space may search model.* keys)

            best = yaml.safe_load(storage.read_bytes(storage.join(spec, "best_config.yaml")).decode())
            raw = ((best or {}).get("train") or {}).get("model") or raw
        if not raw:
            raise ModelSpecError(f"{spec}: run manifest has no train.model config")
        ckpt = next((storage.join(spec, "checkpoints", f"{n}.pt") for n in ("best", "latest")
                     if storage.exists(storage.join(spec, "checkpoints", f"{n}.pt"))), None)
        if ckpt is None:
            raise ModelSpecError(f"{spec}: no checkpoints/best.pt or latest.pt in the run")
        if raw.get("num_classes") is None:  # training fills it from the dataset at run time
            if num_classes is None:
                raise ModelSpecError(f"{spec}: the run's model has no num_classes; give the categories "
                                     "(--categories COCO.json)")
            raw = {**raw, "num_classes": num_classes}
        cfg = ModelConfig.model_validate({**raw, "weights": ckpt, "strict_weights": True})
        return cfg, f"run {spec} ({os.path.basename(ckpt)})"
    if spec.endswith((".pt", ".pth")):
        if not storage.exists(spec):
            raise ModelSpecError(f"{spec}: checkpoint file not found")
        updates.update(weights=spec, strict_weights=True)
    else:
        arch, _, backbone = spec.partition(":")
        _check_arch(spec, arch, backbone)
        updates["arch"] = arch
        if backbone:
            updates["backbone"] = backbone
    if num_classes is not None and "num_classes" not in (model_cfg.model_fields_set or set()):
        updates["num_classes"] = num_classes
    try:
        cfg = ModelConfig.model_validate({**model_cfg.model_dump(), **updates})
    except ValueError as exc:  # pydantic's ValidationError is a ValueError: one line, no URL
        raise ModelSpecError(f"--model {spec}: {_one_line(exc)}") from exc
    return cfg, spec


EXPORT_COMMAND = "export onnx"
_EXPORT_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "config": "model.json"}  # cvray.export.workflow


def _export_file(run: str, what: str) -> str:
    from cvray.io import storage

    return storage.join(run, "artifacts", "export", _EXPORT_FILES[what])


def _export_base(spec: str) -> tuple[str, str | None]:
    """(run, variant) of ``RUN:int8`` / ``RUN:fp32``; (spec, None) otherwise."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and tail in ("fp32", "int8"):
        return head, tail
    return spec, None


def _resolve_export(spec: str, model_cfg, num_classes: int | None):
    """(ModelConfig, source) of an export run / ``.onnx`` file on the ``onnx`` backend, else None."""
    from cvray.io import storage
    from cvray.models import ModelConfig

    base, variant = _export_base(spec)
    man = storage.join(base, "manifest.json")
    if storage.exists(man) and storage.read_json(man).get("command") == EXPORT_COMMAND:
        path = _export_file(base, variant or "fp32")
        if not storage.exists(path):
            hint = " (export with --int8 to have one)" if variant == "int8" else ""
            raise ModelSpecError(f"--model {spec}: the export run has no {_EXPORT_FILES[variant or 'fp32']}{hint}")
        raw = storage.read_json(_export_file(base, "config"))["model"]
        cfg = ModelConfig.model_validate({**raw, "backend": "onnx", "weights": path, "strict_weights": True})
        return cfg, f"export run {base} ({_EXPORT_FILES[variant or 'fp32']})"
    if variant is not None and storage.exists(man):
        raise ModelSpecError(f"--model {spec}: :{variant} names a variant of a cvray export onnx run; "
                             f"{base} is a {storage.read_json(man).get('command')} run")
    if not spec.lower().endswith(".onnx"):
        return None
    if not storage.exists(spec):
        raise ModelSpecError(f"--model {spec}: ONNX file not found")
    from cvray.models.onnx_backend import read_model_config

    raw = read_model_config(spec)
    if raw is None:  # an ONNX file cvray did not export: predict.model says what it is
        raw = model_cfg.model_dump()
        if num_classes is not None and "num_classes" not in (model_cfg.model_fields_set or set()):
            raw["num_classes"] = num_classes
    try:
        cfg = ModelConfig.model_validate({**raw, "backend": "onnx", "weights": spec})
    except ValueError as exc:
        raise ModelSpecError(f"--model {spec}: {_one_line(exc)}") from exc
    return cfg, spec


ACCEPTS = ("--model takes a training run folder (RUNS_ROOT/<run id>, with manifest.json and "
           "checkpoints/), a checkpoint file (.pt/.pth), a cvray export onnx run (RUN, RUN:int8), an .onnx file "
           "or an architecture NAME[:BACKBONE]")


def _check_arch(spec: str, arch: str, backbone: str) -> None:
    """A spec that is neither a run, a checkpoint nor a known architecture says what --model takes."""
    from typing import get_args

    from cvray.io import storage
    from cvray.models.config import Arch, Backbone

    archs, backbones = get_args(Arch), get_args(Backbone)
    if arch not in archs:
        if storage.exists(spec):
            why = "a folder without manifest.json (not a training run)"
        elif "/" not in spec and "\\" not in spec:
            why = ("no such run folder, checkpoint or architecture (a bare run id? give its folder, "
                   "e.g. cvray-runs/" + spec + ")")
        else:
            why = "no such run folder or checkpoint file"
        raise ModelSpecError(f"--model {spec}: {why}; {ACCEPTS} (architectures: {', '.join(archs)})")
    if backbone and backbone not in backbones:
        raise ModelSpecError(f"--model {spec}: unknown backbone {backbone!r} (backbones: {', '.join(backbones)})")


def _one_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'model'}: {e.get('msg')}"
                             for e in errors())
        except Exception:  # noqa: BLE001 - fall back to the text
            pass
    return str(exc).splitlines()[0]


def require_num_classes(cfg, spec: str) -> None:
    """The model's class count must be known before it is built: say how to give it."""
    if cfg.num_classes is None:
        raise ModelSpecError(f"--model {spec}: the model's number of classes is unknown; pass --categories "
                             "COCO.json (the categories it predicts) or predict.model.num_classes=N")
