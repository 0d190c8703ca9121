"""Typed, immutable experiment configs loaded from YAML with dotted ``key=value`` overrides.

Every stage owns one section model (``TrackConfig`` in ``cvray/track/config.py`` ...) and
:class:`ExperimentConfig` composes them. Unknown keys and wrong types are errors that name the
key and the expected type, e.g.::

    >>> load_config(None, ["train.optim.lr=abc"])    # doctest: +SKIP
    ConfigError: train.optim.lr: expected float, got 'abc'
"""
from __future__ import annotations

import functools
import importlib
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

__all__ = [
    "ConfigError",
    "CvrayModel",
    "ExperimentConfig",
    "RayConfig",
    "SectionImportError",
    "StorageConfig",
    "apply_overrides",
    "experiment_model",
    "load_config",
]


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


class CvrayModel(BaseModel):
    """Base of every config section: unknown keys forbidden, values immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class StorageConfig(CvrayModel):
    root: str = Field("./cvray-runs", description="where runs are written: a local folder or s3://bucket/prefix")
    endpoint_url: str | None = Field(None, description="S3 endpoint; default from AWS_ENDPOINT_URL")
    region: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None


class RayConfig(CvrayModel):
    address: str | None = Field(None, description="cluster address; default RAY_ADDRESS, else a local Ray")
    num_cpus: int | None = Field(None, ge=1, description="CPUs for a local Ray (default: all)")
    num_gpus: int | None = Field(None, ge=0)
    include_dashboard: bool = True
    dashboard_host: str = Field("127.0.0.1", description="bind address of dashboard + job server")


# Stage sections live in their own packages and are composed here. A section that fails to import
# is an error at startup naming the module (a silently missing section would turn every one of
# its keys into "unknown key"); a stage is added by adding its line.
_SECTIONS: dict[str, str] = {
    "data": "cvray.data.config:DataConfig",
    "synth": "cvray.data.config:SynthConfig",
    "train": "cvray.train.config:TrainConfig",
    "track": "cvray.track.config:TrackConfig",
    "validation": "cvray.validate.config:ValidateConfig",  # not "validate": BaseModel has one
    "predict": "cvray.predict.config:PredictConfig",
    "eval": "cvray.evaluate.config:EvalConfig",
    "submit": "cvray.submit.config:SubmitConfig",
    "tune": "cvray.tune.config:TuneConfig",
    "robustness": "cvray.robustness.config:RobustnessConfig",
    "calibrate": "cvray.calibrate.config:CalibrateConfig",
    "latency": "cvray.latency.config:LatencyConfig",
    "export": "cvray.export.config:ExportConfig",
}


class SectionImportError(ImportError):
    """A config section's module failed to import (names the module and the error)."""


def _section(key: str, spec: str) -> type[CvrayModel]:
    mod, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(mod), name)
    except ImportError as exc:
        raise SectionImportError(f"config section {key!r}: cannot import {mod} "
                                 f"({type(exc).__name__}: {exc})") from exc
    except AttributeError as exc:
        raise SectionImportError(f"config section {key!r}: {mod} has no {name}") from exc


@functools.cache
def experiment_model() -> type[CvrayModel]:
    """The composed :class:`ExperimentConfig` class, built on first use.

    Built lazily (not at import) so that importing a stage's section module first, which imports
    this module for :class:`CvrayModel`, cannot leave that section out of the composition.
    """
    from pydantic import create_model

    fields: dict[str, Any] = {}
    for key, spec in _SECTIONS.items():
        cls = _section(key, spec)
        fields[key] = (cls, Field(default_factory=cls))
    return create_model("ExperimentConfig", __base__=_ExperimentBase, **fields)


class _ExperimentBase(CvrayModel):
    name: str = "experiment"
    seed: int = 0
    storage: StorageConfig = Field(default_factory=StorageConfig)
    ray: RayConfig = Field(default_factory=RayConfig)


def __getattr__(name: str):
    if name == "ExperimentConfig":
        return experiment_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides to a nested dict (values parsed as YAML scalars)."""
    out = _deep_copy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value (e.g. train.optim.lr=0.01)")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key or any(not p for p in key.split(".")):
            raise ConfigError(f"override {item!r}: empty key")
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(f"override {item!r}: {p} is a value, not a section")
            node = nxt
        node[parts[-1]] = _parse_value(value)
    return out


def _deep_copy(d: dict) -> dict:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in d.items()}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is None:
        return getattr(tp, "__name__", str(tp))
    args = [a for a in typing.get_args(tp)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_type_name(a) if a is not type(None) else "null" for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    return f"{getattr(origin, '__name__', origin)}[{', '.join(_type_name(a) for a in args)}]"


def _expected_type(model: type[BaseModel], loc: tuple) -> str | None:
    tp: Any = model
    for part in loc:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        else:
            return _type_name(tp)
    return _type_name(tp)


def _format_errors(model: type[BaseModel], exc: ValidationError, source: str) -> ConfigError:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not isinstance(p, int) or True)
        key = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            parent = model
            for p in loc[:-1]:
                f = parent.model_fields.get(str(p)) if isinstance(parent, type) else None
                parent = f.annotation if f is not None else None
            known = sorted(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else []
            lines.append(f"{key}: unknown key" + (f" (known: {', '.join(known)})" if known else ""))
        else:
            expected = _expected_type(model, loc) or "a valid value"
            lines.append(f"{key}: expected {expected}, got {err.get('input')!r} ({err['msg']})")
    return ConfigError(f"invalid config ({source}):\n  " + "\n  ".join(lines))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                model: type[BaseModel] | None = None) -> Any:
    """Load a YAML config (or the defaults when ``path`` is None), apply overrides, validate."""
    model = model or experiment_model()
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from exc
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: top level must be a mapping of sections")
    if overrides:
        raw = apply_overrides(raw, overrides)
        source += " + overrides"
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _format_errors(model, exc, source) from None


def config_to_dict(cfg: BaseModel) -> dict[str, Any]:
    """The resolved config as plain JSON data, secrets redacted (stored with every run)."""
    return cfg.model_dump(mode="json")
