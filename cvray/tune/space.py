"""The search space as data (no Ray): check it against ``TrainConfig`` and resolve one trial.

:func:`validate_space` runs before the first trial: every key must name a ``train.*`` field and
every value the space can produce (both ends of a range, every choice) must be accepted by
:class:`~cvray.train.config.TrainConfig` -- so a typo or an impossible range fails with the key
named, instead of as the same error in every trial at 2 a.m. :func:`resolve_train` is what each
trial runs: the config's ``train`` section with the sampled keys replaced.
"""
from __future__ import annotations

import copy
import math
from typing import Any

from pydantic import BaseModel, ValidationError

from cvray.runs.errors import InputError
from cvray.train.config import TrainConfig
from cvray.tune.config import ParamSpec, TuneConfig

__all__ = ["FORBIDDEN", "candidate_values", "resolve_train", "set_dotted", "trial_train_dict",
           "validate_space"]

# keys a trial may not take from the space: they decide where and whether a run resumes, or how
# many Ray Train workers a trial has (tune.trial_workers says that)
FORBIDDEN = ("resume", "run_id", "num_workers", "cpus_per_worker", "use_gpu", "train_split", "val_split")


def set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    """``d`` with ``a.b.c`` set to ``value`` in place (sections created as needed)."""
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[parts[-1]] = value


def _field_path_error(key: str) -> str | None:
    """Why ``key`` (dotted, below train) is not a TrainConfig field; None when it is one."""
    model: type[BaseModel] = TrainConfig
    parts = key.split(".")
    for i, p in enumerate(parts):
        fields = model.model_fields
        if p not in fields:
            where = "train" + "".join("." + q for q in parts[:i])
            return f"{where} has no key {p!r} (known: {', '.join(sorted(fields))})"
        ann = fields[p].annotation
        if i < len(parts) - 1:
            if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
                return f"train.{'.'.join(parts[:i + 1])} is a value, not a section"
            model = ann
    return None


def candidate_values(spec: ParamSpec) -> list[Any]:
    """Values the space can produce that are worth checking: both ends, the middle, every choice."""
    if spec.type == "choice":
        return list(spec.values or [])
    lo, hi = spec.low, spec.high
    if spec.type == "randint":
        return sorted({int(lo), int(hi) - 1})
    mid = math.sqrt(lo * hi) if spec.type == "loguniform" else (lo + hi) / 2
    return [lo, mid, hi]


def trial_train_dict(base: dict[str, Any], sampled: dict[str, Any], *,
                     max_iter: int | None = None) -> dict[str, Any]:
    """The ``train`` dict of one trial: ``base`` (the config's train section, JSON-dumped) with the
    sampled dotted keys set and the per-trial iteration cap applied."""
    d = copy.deepcopy(base)
    for key, value in sampled.items():
        set_dotted(d, key[len("train."):] if key.startswith("train.") else key, value)
    if max_iter is not None:
        d["max_iter"] = int(max_iter)
    for k in ("resume", "run_id"):  # a trial never resumes someone else's run
        d.pop(k, None)
    return d


def resolve_train(base: dict[str, Any], sampled: dict[str, Any], *, max_iter: int | None = None) -> TrainConfig:
    """The validated :class:`TrainConfig` of one trial (see :func:`trial_train_dict`)."""
    return TrainConfig.model_validate(trial_train_dict(base, sampled, max_iter=max_iter))


def validate_space(section: TuneConfig, base: dict[str, Any]) -> None:
    """Raise :class:`InputError` naming the first bad key of ``tune.space``: not a ``train.*``
    field, forbidden (:data:`FORBIDDEN`), a section instead of a value, or a value ``TrainConfig``
    rejects (checked for both ends of every range and every choice, one key at a time)."""
    items = section.spec_items()
    if not items:
        raise InputError("tune.space is empty: name at least one train.* key to search, e.g. "
                         "tune.space.optim.lr: {type: loguniform, low: 1e-4, high: 1e-2}")
    for key, spec in items:
        if key.split(".")[0] in FORBIDDEN:
            raise InputError(f"tune.space.{key}: not searchable (it decides where a trial runs or "
                             f"resumes; use tune.trial_workers / tune.trial_cpus for resources)")
        why = _field_path_error(key)
        if why:
            raise InputError(f"tune.space.{key}: {why}")
        for value in candidate_values(spec):
            try:
                resolve_train(base, {key: value}, max_iter=section.max_iter)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise InputError(f"tune.space.{key}: value {value!r} is rejected by train."
                                 f"{'.'.join(str(x) for x in first['loc']) or key}: {first['msg']}") from None
    if section.scheduler == "pbt":
        keys = {k for k, _ in items}
        for m in section.pbt.mutations or []:
            m = m[len("train."):] if m.startswith("train.") else m
            if m not in keys:
                raise InputError(f"tune.pbt.mutations: {m!r} is not a key of tune.space ({', '.join(sorted(keys))})")
