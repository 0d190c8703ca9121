"""Plots of a search (matplotlib, PNG into the run's artifacts): metric vs iteration per trial
with the ASHA rungs marked, each searched parameter vs the final metric, best-so-far vs wall time."""
from __future__ import annotations

import math
from typing import Any

from cvray.tune.config import ParamSpec
from cvray.report.figures import plt as _plt
from cvray.report.figures import png as _png

__all__ = ["write_plots"]

_COLORS = {"completed": "tab:green", "early_stopped": "tab:orange", "time_budget": "tab:purple",
           "interrupted": "tab:gray", "error": "tab:red", "pending": "tab:gray", "stopped": "tab:orange"}


def _series(trial: dict, key: str) -> tuple[list[float], list[float]]:
    from cvray.tune.outputs import dedupe_rows, as_number

    xs, ys = [], []
    for r in dedupe_rows(trial["rows"]):
        v = as_number(r.get(key))
        if v is not None:
            xs.append(float(r["iteration"]))
            ys.append(v)
    return xs, ys


def curves_png(rows: list[dict], trials: list[dict], metric: str, milestones: list[int]) -> bytes:
    plt = _plt()
    status = {r["trial_id"]: r["status"] for r in rows}
    fig, ax = plt.subplots(figsize=(7, 4))
    for t in trials:
        xs, ys = _series(t, metric)
        if xs:
            st = status.get(t["trial_id"], "")
            ax.plot(xs, ys, marker="o", ms=3, lw=1.2, color=_COLORS.get(st, "tab:blue"), alpha=0.85)
            ax.annotate(t["trial_id"].split("_")[-1], (xs[-1], ys[-1]), fontsize=6, alpha=0.7)
    for m in milestones:
        ax.axvline(m, ls="--", lw=0.8, color="k", alpha=0.4)
    handles = [plt.Line2D([], [], color=c, label=s) for s, c in _COLORS.items() if s in status.values()]
    if milestones:
        handles.append(plt.Line2D([], [], color="k", ls="--", alpha=0.4, label="ASHA rung"))
    ax.legend(handles=handles, fontsize=7)
    ax.set_xlabel("iteration")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per trial")
    return _png(fig)


def params_png(rows: list[dict], metric: str, space: dict[str, ParamSpec]) -> bytes | None:
    plt = _plt()
    keys = list(space)
    if not keys:
        return None
    n = len(keys)
    cols = min(3, n)
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(4 * cols, 3 * math.ceil(n / cols)), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        spec = space[key]
        pts = [(r["params"].get(key), r["last_metric"], r["status"]) for r in rows
               if r["last_metric"] is not None and key in r["params"]]
        if spec.type == "choice":
            labels = [str(v) for v in spec.values]
            for v, y, st in pts:
                ax.scatter(labels.index(str(v)) if str(v) in labels else -1, y, color=_COLORS.get(st, "tab:blue"))
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, fontsize=7, rotation=20)
        else:
            for v, y, st in pts:
                ax.scatter(float(v), y, color=_COLORS.get(st, "tab:blue"))
            if spec.type == "loguniform":
                ax.set_xscale("log")
        ax.set_xlabel(key, fontsize=8)
        ax.set_ylabel(f"last {metric}", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("searched parameters vs each trial's last metric (colour: status)", fontsize=9)
    return _png(fig)


def best_so_far_png(trials: list[dict], metric: str, mode: str) -> bytes | None:
    from cvray.tune.outputs import as_number

    pts = sorted((float(r["timestamp"]), as_number(r.get(metric))) for t in trials for r in t["rows"]
                 if as_number(r.get("timestamp")) is not None and as_number(r.get(metric)) is not None)
    if not pts:
        return None
    t0 = pts[0][0]
    xs, ys, best = [], [], None
    for ts, v in pts:
        best = v if best is None else (max(best, v) if mode == "max" else min(best, v))
        xs.append((ts - t0) / 60.0)
        ys.append(best)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.step(xs, ys, where="post")
    ax.set_xlabel("wall time since the first report (min)")
    ax.set_ylabel(f"best {metric} so far")
    ax.set_title("best so far")
    return _png(fig)


def write_plots(run, rows: list[dict], trials: list[dict], *, metric: str, mode: str,
                milestones: list[int], space: dict[str, ParamSpec]) -> dict[str, str]:
    """Write the three PNGs under ``artifacts/tune/``; returns name -> URI."""
    out = {}
    for name, data in (("curves", curves_png(rows, trials, metric, milestones)),
                       ("params", params_png(rows, metric, space)),
                       ("best_so_far", best_so_far_png(trials, metric, mode))):
        if data:
            out[name] = run.write_artifact(f"tune/{name}.png", data)
    return out
