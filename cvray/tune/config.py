"""``tune:`` section: the search space, scheduler, searcher and budget of ``cvray tune``.

The space names ``train.*`` keys by their dotted path below ``train`` (``optim.lr``,
``augment.hflip_prob``, ``batch_size``) -- or with the ``train.`` prefix, which is dropped --
each with a distribution. Every other training setting comes from the config's ``train``
section, so a trial is exactly a ``cvray train`` run with some keys replaced. The space is
checked against :class:`cvray.train.config.TrainConfig` before the first trial starts
(:func:`cvray.tune.space.validate_space`).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from cvray.config import CvrayModel

__all__ = ["OptunaConfig", "PBTConfig", "ParamSpec", "TuneConfig"]


class ParamSpec(CvrayModel):
    """One searched key: ``{type: loguniform, low: 1e-4, high: 1e-2}``, ``{type: choice, values:
    [2, 4]}``, ``{type: randint, low: 0, high: 50}`` (high exclusive), ``{type: uniform, ...}``."""

    type: Literal["loguniform", "uniform", "choice", "randint"]
    low: float | None = None
    high: float | None = None
    values: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> "ParamSpec":
        if self.type == "choice":
            if not self.values:
                raise ValueError("a choice needs a non-empty 'values' list")
            if self.low is not None or self.high is not None:
                raise ValueError("a choice takes 'values', not low/high")
            return self
        if self.values is not None:
            raise ValueError(f"{self.type} takes low/high, not 'values'")
        if self.low is None or self.high is None:
            raise ValueError(f"{self.type} needs both 'low' and 'high'")
        if not self.low < self.high:
            raise ValueError(f"{self.type}: low ({self.low}) must be below high ({self.high})")
        if self.type == "loguniform" and self.low <= 0:
            raise ValueError(f"loguniform needs low > 0 (got {self.low})")
        if self.type == "randint" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("randint takes integer low/high (high exclusive)")
        return self


class PBTConfig(CvrayModel):
    """Population Based Training: every ``perturbation_interval`` iterations the bottom
    ``quantile_fraction`` of trials copy a top trial's checkpoint (weights, optimizer) and
    continue with its hyperparameters mutated (``mutations``: keys of the space)."""

    perturbation_interval: int | None = Field(None, ge=1, description="iterations (default: train.eval_period)")
    mutations: list[str] | None = Field(None, description="space keys PBT mutates (default: every "
                                        "optim.* and augment.* key of the space)")
    quantile_fraction: float = Field(0.25, gt=0, le=0.5)
    resample_probability: float = Field(0.25, ge=0, le=1)


class OptunaConfig(CvrayModel):
    multivariate: bool = True
    constant_liar: bool = Field(True, description="parallel trials: pending ones count as a bad "
                                "result so concurrent suggestions spread out")
    n_startup_trials: int = Field(4, ge=1, description="random trials before TPE's model is used")


class TuneConfig(CvrayModel):
    space: dict[str, ParamSpec] = Field(default_factory=dict)
    metric: str | None = Field(None, description="what is optimised (default: train's best metric, "
                               "e.g. segm_AP); any metric the evaluation reports, e.g. bbox_AP50")
    mode: Literal["max", "min"] = "max"
    scheduler: Literal["asha", "hyperband", "pbt", "fifo"] = "asha"
    search: Literal["random", "optuna"] = "random"
    num_samples: int = Field(8, ge=1, description="trials")
    max_concurrent_trials: int | None = Field(None, ge=1, description="default: as many as fit")
    time_budget_s: float | None = Field(None, gt=0, description="wall budget of the whole search, "
                                        "summed over resumes (overnight: 28800)")
    max_iter: int | None = Field(None, ge=1, description="iterations per trial (default train.max_iter)")
    grace_period: int | None = Field(None, ge=1, description="ASHA: iterations before a "
                                     "trial can be stopped (default: train.eval_period)")
    reduction_factor: float = Field(2.0, gt=1)
    brackets: int = Field(1, ge=1)
    pbt: PBTConfig = Field(default_factory=PBTConfig)
    optuna: OptunaConfig = Field(default_factory=OptunaConfig)
    trial_cpus: float = Field(1.0, gt=0, description="CPUs per trial (per worker with trial_workers > 1)")
    trial_gpus: float = Field(0.0, ge=0, description="GPUs per trial; a fraction shares a GPU between "
                              "single-worker trials")
    trial_workers: int = Field(1, ge=1, description="1: the trial trains in its own process; >1: each "
                               "trial is a Ray Train run of that many workers (driver on a CPU node)")
    max_failures: int = Field(0, ge=0, description="times Tune retries a failed trial from its checkpoint")
    retry_errored: bool = Field(False, description="--resume: continue errored trials from their checkpoint")
    keep_checkpoints: int = Field(2, ge=1, description="checkpoints Tune keeps per trial (best by metric; "
                                  "PBT keeps all: a donor's checkpoint must outlive its cloning)")
    seed: int | None = Field(None, description="the searcher's seed (default: the config's seed)")

    @field_validator("space", mode="before")
    @classmethod
    def _flatten(cls, v: Any) -> Any:
        """Nested sections and dotted keys mean the same (``optim: {lr: {...}}`` = ``optim.lr:
        {...}``), so a CLI override ``tune.space.optim.lr.high=0.01`` lands on the YAML's
        ``optim.lr`` entry; a later spelling of the same key updates the earlier one."""
        if not isinstance(v, dict):
            return v
        out: dict[str, Any] = {}

        def walk(d: dict, prefix: str) -> None:
            for k, val in d.items():
                key = f"{prefix}{k}"
                if isinstance(val, dict) and val and not ({"type", "low", "high", "values"} & set(val)):
                    walk(val, key + ".")
                elif isinstance(val, dict) and isinstance(out.get(key), dict):
                    out[key] = {**out[key], **val}
                else:
                    out[key] = val

        walk(v, "")
        return out

    @model_validator(mode="after")
    def _check(self) -> "TuneConfig":
        if self.scheduler == "pbt" and self.search == "optuna":
            raise ValueError("tune.scheduler=pbt searches by mutation; use tune.search=random with it")
        if self.scheduler == "hyperband" and self.max_concurrent_trials:
            # Ray's HyperBand refills a bracket whose trials ended with trials created later, so
            # trials created a few at a time all land in the first bracket, which stops nothing
            raise ValueError("tune.max_concurrent_trials cannot be used with tune.scheduler=hyperband: its "
                             "brackets need every trial created up front; bound concurrency with "
                             "tune.trial_cpus / tune.trial_gpus")
        return self

    def spec_items(self) -> list[tuple[str, ParamSpec]]:
        """The space's (dotted key below ``train``, spec) pairs, sorted."""
        return sorted((k[len("train."):] if k.startswith("train.") else k, v) for k, v in self.space.items())
