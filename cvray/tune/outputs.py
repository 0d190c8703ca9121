"""What a search leaves behind, as data (no Ray): the ``trials`` and ``trial_curves`` tables, the
stop reason and rung of each trial, the best trial, and ``best_config.yaml``.

``trials``: one row per trial -- status (``completed`` | ``early_stopped`` | ``time_budget`` |
``interrupted`` | ``pending`` | ``error``), why and at which rung it stopped, iterations,
evaluations, wall time, best and last metric, the resolved ``train`` section (JSON), the sampled
values (JSON and one ``param:<key>`` column per numeric key), the best checkpoint's URI.
``trial_curves``: one row per report (trial, iteration, every reported metric, wall clock).
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterable

import pyarrow as pa

from cvray.runs.tables import declare

__all__ = ["CURVE_COLUMNS", "TRIALS_SCHEMA", "TRIAL_CURVES_SCHEMA", "as_number", "asha_milestones", "best_config",
           "best_trial", "classify", "dedupe_rows", "trial_curves_table", "trials_rows", "trials_table"]

TRIALS_SCHEMA = declare("trials", [
    pa.field("trial_id", pa.string()),
    pa.field("status", pa.string()),
    pa.field("tune_status", pa.string()),
    pa.field("stop_reason", pa.string()),
    pa.field("stop_rung", pa.int64()),
    pa.field("iterations", pa.int64()),
    pa.field("evaluations", pa.int64()),
    pa.field("wall_s", pa.float64()),
    pa.field("metric", pa.string()),
    pa.field("best_metric", pa.float64()),
    pa.field("last_metric", pa.float64()),
    pa.field("sampled", pa.string()),
    pa.field("train_config", pa.string()),
    pa.field("checkpoint", pa.string()),
    pa.field("restored_from", pa.string()),
    pa.field("error", pa.string()),
], version=1)

# fixed columns of trial_curves; every numeric metric the evaluation reports follows them
CURVE_COLUMNS = [
    pa.field("trial_id", pa.string()),
    pa.field("iteration", pa.int64()),
    pa.field("evaluation", pa.int64()),
    pa.field("timestamp", pa.float64()),
    pa.field("time_total_s", pa.float64()),
    pa.field("weights_sha", pa.string()),
    pa.field("restored_from", pa.string()),
    pa.field("restored_iteration", pa.int64()),
    pa.field("restored_sha", pa.string()),
]
TRIAL_CURVES_SCHEMA = declare("trial_curves", CURVE_COLUMNS, version=1)

# what Tune adds to every result: not metrics of the model
_TUNE_KEYS = {"training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "time_since_restore",
              "iterations_since_restore", "timesteps_total", "episodes_total", "timesteps_since_restore",
              "pid", "hostname", "node_ip", "date", "done", "experiment_id", "experiment_tag",
              "checkpoint_dir_name", "should_checkpoint", "trial_id", "eval_time", "config", "reported_at"}


def as_number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v else None


def asha_milestones(grace: int, reduction_factor: float, max_t: int) -> list[int]:
    """The rungs of Tune's ASHA bracket 0 (``min_t * rf**k``, as ``ray.tune.schedulers.ASHA``)."""
    n = int(math.log(max_t / grace) / math.log(reduction_factor) + 1)
    return [int(grace * reduction_factor ** k) for k in range(n)]


def dedupe_rows(rows: list[dict]) -> list[dict]:
    """One row per iteration (the last: a trial resumed from an older checkpoint re-reports)."""
    by_it: dict[int, dict] = {}
    for r in rows:
        it = r.get("iteration")
        if isinstance(it, (int, float)) and it == it:
            by_it[int(it)] = r
    return [by_it[k] for k in sorted(by_it)]


def classify(trial: dict, *, max_iter: int, scheduler: str, milestones: list[int],
             interrupted: bool, budget_exhausted: bool) -> tuple[str, str, int | None]:
    """(status, stop reason, stop rung) of one collected trial (see the module doc)."""
    rows = dedupe_rows(trial["rows"])
    last = int(rows[-1]["iteration"]) if rows else 0
    tune_status = trial.get("status") or ""
    if trial.get("error") or tune_status == "ERROR":
        return "error", f"error: {trial.get('error') or 'the trial failed'}", None
    if last >= max_iter:
        return "completed", f"reached train.max_iter={max_iter}", None
    if interrupted:  # (Tune marks the trials it stopped for the interruption TERMINATED too)
        return ("interrupted", "the search was interrupted; --resume continues it", None) if rows else \
               ("pending", "not started when the search was interrupted", None)
    if budget_exhausted:
        return "time_budget", "tune.time_budget_s reached", None
    if not rows:
        return "pending", "never started", None
    if scheduler in ("asha", "hyperband"):
        passed = [m for m in milestones if m <= last]
        # HyperBand's rungs differ per bracket: the rung it was cut at is where it stopped
        rung = passed[-1] if passed else (last if scheduler == "hyperband" else None)
        return "early_stopped", f"{scheduler}: below the rung's cutoff at iteration {last}", rung
    return "stopped", f"stopped by {scheduler} at iteration {last}", None


def trials_rows(trials: Iterable[dict], *, metric: str, mode: str, max_iter: int, scheduler: str,
                milestones: list[int], interrupted: bool, budget_exhausted: bool,
                train_configs: dict[str, dict]) -> list[dict]:
    """Rows of the ``trials`` table (plus ``params``: the sampled values, for the param columns)."""
    out = []
    for t in trials:
        rows = dedupe_rows(t["rows"])
        vals = [v for v in (as_number(r.get(metric)) for r in rows) if v is not None]
        status, reason, rung = classify(t, max_iter=max_iter, scheduler=scheduler, milestones=milestones,
                                        interrupted=interrupted, budget_exhausted=budget_exhausted)
        donors = sorted({str(r.get("restored_from")) for r in rows
                         if r.get("restored_from") and r.get("restored_from") != t["trial_id"]})
        params = {k: v for k, v in (t.get("config") or {}).items()}
        out.append({
            "trial_id": t["trial_id"], "status": status, "tune_status": t.get("status") or "",
            "stop_reason": reason, "stop_rung": rung,
            "iterations": int(rows[-1]["iteration"]) if rows else 0,
            "evaluations": len(rows),
            "wall_s": as_number(rows[-1].get("time_total_s")) if rows else None,
            "metric": metric,
            "best_metric": (max(vals) if mode == "max" else min(vals)) if vals else None,
            "last_metric": vals[-1] if vals else None,
            "sampled": json.dumps(params, sort_keys=True, default=str),
            "train_config": json.dumps(train_configs.get(t["trial_id"], {}), sort_keys=True),
            "checkpoint": t.get("checkpoint"),
            "restored_from": ",".join(donors) or None,
            "error": t.get("error"),
            "params": params,
        })
    return out


def trials_table(rows: list[dict]) -> pa.Table:
    """The ``trials`` table; one ``param:<key>`` float64 column per numeric searched key."""
    keys = sorted({k for r in rows for k, v in r["params"].items() if as_number(v) is not None})
    fields = list(TRIALS_SCHEMA) + [pa.field(f"param:{k}", pa.float64()) for k in keys]
    schema = pa.schema(fields, metadata=TRIALS_SCHEMA.metadata)
    cols = {f.name: [r.get(f.name) for r in rows] for f in TRIALS_SCHEMA}
    for k in keys:
        cols[f"param:{k}"] = [as_number(r["params"].get(k)) for r in rows]
    return pa.table(cols, schema=schema)


def trial_curves_table(trials: Iterable[dict]) -> pa.Table:
    """The ``trial_curves`` table: one row per (trial, iteration) reported."""
    rows = [(t["trial_id"], r) for t in trials for r in dedupe_rows(t["rows"])]
    fixed = {f.name for f in CURVE_COLUMNS}
    metric_keys = sorted({k for _, r in rows for k, v in r.items()
                          if k not in fixed and k not in _TUNE_KEYS and not k.startswith("config/")
                          and as_number(v) is not None})
    fields = CURVE_COLUMNS + [pa.field(k, pa.float64()) for k in metric_keys]
    schema = pa.schema(fields, metadata=TRIAL_CURVES_SCHEMA.metadata)

    def get(r, f):
        # the trainable's own sub-second clock when it sent one (Tune's timestamp is whole seconds)
        v = r.get("reported_at", r.get("timestamp")) if f.name == "timestamp" else r.get(f.name)
        if pa.types.is_string(f.type):
            return None if v is None or (isinstance(v, float) and v != v) else str(v)
        if pa.types.is_int64(f.type):
            return int(v) if as_number(v) is not None else None
        return as_number(v)

    cols = {f.name: [tid if f.name == "trial_id" else get(r, f) for tid, r in rows] for f in fields}
    return pa.table(cols, schema=schema)


def best_trial(rows: list[dict], mode: str) -> dict | None:
    """The trial whose config ``best_config.yaml`` holds: the best *last* metric among trials that
    trained their full budget (a trial stopped at a rung is judged on fewer iterations); when none
    completed, the best metric any trial reached."""
    sign = 1 if mode == "max" else -1
    done = [r for r in rows if r["status"] == "completed" and r["last_metric"] is not None]
    if done:
        return max(done, key=lambda r: sign * r["last_metric"])
    scored = [r for r in rows if r["best_metric"] is not None]
    return max(scored, key=lambda r: sign * r["best_metric"]) if scored else None


def best_config(cfg: dict[str, Any], train: dict[str, Any], *, dataset: str) -> dict[str, Any]:
    """A config ``cvray train --config best_config.yaml`` accepts as is: the search's config with
    the best trial's resolved ``train`` section, ``data.root`` = the searched dataset and no
    ``tune`` section."""
    out = {k: v for k, v in cfg.items() if k != "tune"}
    out["train"] = {k: v for k, v in train.items() if k not in ("resume", "run_id")}
    out["data"] = {**(out.get("data") or {}), "root": dataset}
    if isinstance(out.get("storage"), dict):  # redacted secrets ("**********") are not values to reuse
        out["storage"] = {k: v for k, v in out["storage"].items()
                          if not (isinstance(v, str) and v and set(v) == {"*"})}
    return out
