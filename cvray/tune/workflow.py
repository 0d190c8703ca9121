"""``run_tune``: the tune stage's entry point -- a search space over ``train.*`` in, a ``trials``
table, per-trial curves, the best config, its checkpoint and plots in the run.

Example::

    from cvray.config import load_config
    from cvray.runs import run_context
    from cvray.tune.workflow import prepare_tune, run_tune

    cfg = load_config("configs/tune/demo.yaml")
    inputs = prepare_tune(cfg.tune, cfg, dataset="./synth/coco")      # InputError -> exit 2
    with run_context("tune", cfg, ray=True) as run:
        summary = run_tune(run, cfg.tune, inputs, ray=True)
    summary["best"]["config"]
"""
from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from cvray.io import storage
from cvray.runs.errors import InputError
from cvray.train.config import TrainConfig
from cvray.tune.config import TuneConfig
from cvray.tune.outputs import (asha_milestones, best_config, best_trial, trial_curves_table, trials_rows,
                                trials_table)
from cvray.tune.space import resolve_train, validate_space

__all__ = ["TuneInputs", "prepare_tune", "run_tune"]

log = logging.getLogger(__name__)

CONFIG_FILE = "tune_config.json"  # the search's resolved config, for --resume (also after kill -9)
BEST_CONFIG = "best_config.yaml"


@dataclass(frozen=True)
class TuneInputs:
    """What the tune stage reads: the dataset, the base ``train`` section every trial starts from,
    the whole resolved config (``best_config.yaml`` is written from it), the seed, and whether
    to continue the run's experiment (``--resume``)."""

    dataset: str
    train: TrainConfig
    config: dict[str, Any] = field(repr=False)
    seed: int = 0
    metric: str = "segm_AP"
    resume: bool = False


def prepare_tune(section: TuneConfig, cfg: Any, *, dataset: str | None, resume: bool = False) -> TuneInputs:
    """Check the dataset, the space (against ``TrainConfig``) and the budget before any trial."""
    from cvray.config import config_to_dict

    dataset = dataset or cfg.data.root
    if not dataset:
        raise InputError("no dataset: pass --dataset URI or set data.root in the config")
    if not storage.is_s3(dataset):
        dataset = os.path.abspath(dataset)
    train = cfg.train
    for split in (train.train_split, train.val_split):
        ann = storage.join(dataset, "annotations", f"instances_{split}.json")
        if not storage.exists(ann):
            raise InputError(f"{dataset}: no {split} split ({ann} is missing); a search needs "
                             f"train.train_split and train.val_split (trials are compared on val)")
    if not train.eval_period:
        raise InputError("train.eval_period=0: trials report at every evaluation, so early stopping needs "
                         "train.eval_period > 0 (e.g. a quarter of tune.max_iter)")
    max_iter = section.max_iter or train.max_iter
    if train.eval_period > max_iter:
        raise InputError(f"train.eval_period={train.eval_period} is beyond the trials' {max_iter} "
                         f"iterations: no evaluation before the end, nothing to stop early on")
    if section.scheduler == "pbt" and section.trial_workers > 1:
        raise InputError("tune.scheduler=pbt needs single-process trials (tune.trial_workers=1): PBT copies "
                         "checkpoints that Tune itself holds, and Ray Train trials keep their own")
    validate_space(section, train.model_dump(mode="json"))
    metric = section.metric or train.metric_name
    return TuneInputs(dataset=dataset, train=train, config=config_to_dict(cfg), seed=int(cfg.seed),
                      metric=metric, resume=resume)


def _checkpoint_uri(run, path: str | None) -> str | None:
    """A Tune checkpoint path (on the run's filesystem) as a URI cvray's storage reads."""
    if not path:
        return None
    return path if storage.is_s3(path) or not storage.is_s3(run.uri) else f"s3://{path.lstrip('/')}"


def run_tune(run, section: TuneConfig, inputs: TuneInputs, *, ray: bool = True,
             on_progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run the search (``inputs.resume``: continue this run's); write its tables, best config,
    best checkpoint and plots into ``run``; return the summary. A SIGINT / SIGTERM during the
    search stops it gracefully: what ran is written, then ``KeyboardInterrupt`` (``Terminated``)
    is raised so the run ends ``interrupted``."""
    if not ray:
        raise InputError("cvray tune schedules its trials with Ray Tune; it has no --no-ray mode")
    from cvray.tune.distributed import STATE_FILE, TrialSpec, tune_with_ray

    train = inputs.train
    base = train.model_dump(mode="json")
    max_iter = section.max_iter or train.max_iter
    period = train.eval_period
    grace = section.grace_period or period
    storage.write_json(run.path(CONFIG_FILE), inputs.config)
    spec = TrialSpec(base_train=base, dataset=inputs.dataset, trials_uri=run.path("trials"), seed=inputs.seed,
                     max_iter=max_iter, trial_workers=section.trial_workers, metric=inputs.metric)
    raw = tune_with_ray(run, section, spec, metric=inputs.metric, grace=grace, period=period,
                        resume=inputs.resume, on_progress=on_progress)
    milestones = asha_milestones(grace, section.reduction_factor, max_iter) if section.scheduler == "asha" else []
    train_configs = {t["trial_id"]: resolve_train(base, t["config"], max_iter=max_iter).model_dump(mode="json")
                     for t in raw["trials"]}
    rows = trials_rows(raw["trials"], metric=inputs.metric, mode=section.mode, max_iter=max_iter,
                       scheduler=section.scheduler, milestones=milestones, interrupted=raw["interrupted"] is not None,
                       budget_exhausted=raw["budget_exhausted"], train_configs=train_configs)
    for r in rows:
        r["checkpoint"] = _checkpoint_uri(run, r["checkpoint"])
    run.write_table("trials", trials_table(rows))
    run.write_table("trial_curves", trial_curves_table(raw["trials"]))
    best = best_trial(rows, section.mode)
    summary: dict[str, Any] = {
        "trials": len(rows),
        "by_status": {s: sum(r["status"] == s for r in rows) for s in sorted({r["status"] for r in rows})},
        "metric": inputs.metric, "mode": section.mode, "scheduler": section.scheduler, "search": section.search,
        "iterations_trained": sum(r["iterations"] for r in rows),
        "iterations_full_budget": max_iter * len(rows),
        "elapsed_s": round(raw["elapsed_s"], 1), "time_budget_s": section.time_budget_s,
        "budget_exhausted": raw["budget_exhausted"], "rungs": milestones,
    }
    if best is not None:
        cfg_out = best_config(inputs.config, train_configs[best["trial_id"]], dataset=inputs.dataset)
        text = (f"# best trial {best['trial_id']} of cvray tune run {run.id} ({inputs.metric} "
                f"{best['last_metric'] if best['status'] == 'completed' else best['best_metric']})\n"
                f"# cvray train --config {BEST_CONFIG}   retrains it (same seed, same data)\n"
                + yaml.safe_dump(cfg_out, sort_keys=False))
        storage.write_bytes(run.path(BEST_CONFIG), text.encode())
        from cvray.tune.distributed import CKPT_FILE

        # Tune's best checkpoint of the trial; a multi-worker trial's checkpoints are Ray Train's,
        # in the trial's own run (best.pt, else latest.pt)
        trial_run = run.path("trials", best["trial_id"], "checkpoints")
        ckpt = None
        for src in ([storage.join(best["checkpoint"], CKPT_FILE)] if best["checkpoint"] else []) + \
                [storage.join(trial_run, "best.pt"), storage.join(trial_run, "latest.pt")]:
            if storage.exists(src):
                ckpt = run.path("checkpoints", "best.pt")
                storage.write_bytes(ckpt, storage.read_bytes(src))
                break
        summary["best"] = {"trial_id": best["trial_id"], "status": best["status"],
                           inputs.metric: best["last_metric"] if best["status"] == "completed" else best["best_metric"],
                           "config": {k: v for k, v in best["params"].items()},
                           "best_config": run.path(BEST_CONFIG), "checkpoint": ckpt}
    try:
        from cvray.tune.plots import write_plots

        summary["plots"] = write_plots(run, rows, raw["trials"], metric=inputs.metric, mode=section.mode,
                                       milestones=milestones, space=dict(section.spec_items()))
    except Exception as exc:  # a plot never costs the search's results
        log.warning("tune plots not written: %s", exc)
    run.summary.update(summary)
    if raw["interrupted"] is not None:
        from cvray.runs.context import Terminated

        run.summary["resume"] = f"cvray tune --resume {run.id}"
        raise Terminated("SIGTERM") if raw["interrupted"] == signal.SIGTERM else KeyboardInterrupt()
    return summary
