"""Plots of a robustness suite: AP vs severity per corruption (boxes and masks, clean AP dashed)
and a corruption x severity heat map (PNG into the run's artifacts)."""
from __future__ import annotations

from typing import Any

import numpy as np

from cvray.robustness.records import CLEAN
from cvray.report.figures import plt as _plt
from cvray.report.figures import png as _png

__all__ = ["write_plots", "write_tracking_plots"]


def _grid(rows: list[dict], metric: str) -> tuple[list[str], list[int], np.ndarray, float | None]:
    corr = list(dict.fromkeys(r["corruption"] for r in rows if r["corruption"] != CLEAN))
    try:  # the registry's order (the benchmark's, then holdout, extras)
        from cvray.robustness.corruptions import BENCHMARK, EXTRAS, HOLDOUT

        order = {c: i for i, c in enumerate((*BENCHMARK, *HOLDOUT, *EXTRAS))}
        corr.sort(key=lambda c: order.get(c, len(order)))
    except ImportError:
        corr.sort()
    sev = sorted({int(r["severity"]) for r in rows if r["corruption"] != CLEAN})
    a = np.full((len(corr), len(sev)), np.nan)
    for r in rows:
        if r["corruption"] != CLEAN and r.get(metric) is not None:
            a[corr.index(r["corruption"]), sev.index(int(r["severity"]))] = r[metric]
    clean = next((r[metric] for r in rows if r["corruption"] == CLEAN and r.get(metric) is not None), None)
    return corr, sev, a, clean


def severity_png(rows: list[dict], metric: str) -> bytes | None:
    corr, sev, a, clean = _grid(rows, metric)
    if not corr:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [0, *sev]
    for i, c in enumerate(corr):
        ax.plot(xs, [clean if clean is not None else np.nan, *a[i]], marker="o", ms=3, lw=1, label=c)
    if clean is not None:
        ax.axhline(clean, ls="--", color="k", lw=0.8, label="clean (P)")
    ax.set_xticks(xs)
    ax.set_xticklabels(["clean", *map(str, sev)])
    ax.set_xlabel("severity")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs corruption severity")
    ax.legend(fontsize=6, ncol=2, loc="upper right")
    return _png(fig)


def heatmap_png(rows: list[dict], metric: str) -> bytes | None:
    corr, sev, a, clean = _grid(rows, metric)
    if not corr:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(sev), 0.8 + 0.32 * len(corr)))
    im = ax.imshow(a, aspect="auto", cmap="viridis", vmin=0, vmax=max(np.nanmax(a) if np.isfinite(a).any() else 0,
                                                                      clean or 0) or 1)
    for i in range(len(corr)):
        for j in range(len(sev)):
            if np.isfinite(a[i, j]):
                ax.text(j, i, f"{a[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w")
    ax.set_xticks(range(len(sev)))
    ax.set_xticklabels(map(str, sev))
    ax.set_yticks(range(len(corr)))
    ax.set_yticklabels(corr, fontsize=7)
    ax.set_xlabel("severity")
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(f"{metric} (clean {clean:.3f})" if clean is not None else metric, fontsize=9)
    return _png(fig)


def write_plots(run, rows: list[dict], summary: dict[str, Any]) -> dict[str, str]:
    out = {}
    for metric in summary:
        for name, fn in (("severity", severity_png), ("heatmap", heatmap_png)):
            data = fn(rows, metric)
            if data:
                out[f"{name}_{metric}"] = run.write_artifact(f"robustness/{name}_{metric}.png", data)
    return out


def bitrate_png(rows: list[dict], metric: str = "HOTA") -> bytes | None:
    """``metric`` vs the bitrate each compression tier took, one line per (detector, codec)."""
    comp = [r for r in rows if r["kind"] == "compression" and r.get("bitrate_kbps")]
    if not comp:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for det, codec in sorted({(r["detector"], r["codec"]) for r in comp}):
        pts = sorted((r["bitrate_kbps"], r[metric], r["crf"]) for r in comp
                     if r["detector"] == det and r["codec"] == codec)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{codec} ({det} detections)")
        for x, y, crf in pts:
            ax.annotate(f"crf {crf}", (x, y), fontsize=6, xytext=(2, 2), textcoords="offset points")
    for det in sorted({r["detector"] for r in comp}):
        clean = next((r[metric] for r in rows if r["detector"] == det and r["kind"] == "clean"), None)
        if clean is not None:
            ax.axhline(clean, ls="--", lw=0.8, color="k")
    ax.set_xscale("log")
    ax.set_xlabel("bitrate (kbit/s, log)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs compression (dashed: uncompressed)")
    ax.legend(fontsize=7)
    return _png(fig)


def write_tracking_plots(run, rows: list[dict]) -> dict[str, str]:
    """HOTA / IDF1 vs severity and the heat map per detector; HOTA vs bitrate."""
    out = {}
    for det in sorted({r["detector"] for r in rows}):
        grid = [{**r, "corruption": r["condition"]} for r in rows
                if r["detector"] == det and r["kind"] in ("clean", "corruption")]
        for metric in ("HOTA", "IDF1"):
            for name, fn in (("severity", severity_png), ("heatmap", heatmap_png)):
                data = fn(grid, metric)
                if data:
                    out[f"tracking_{name}_{metric}_{det}"] = run.write_artifact(
                        f"robustness/tracking_{name}_{metric}_{det}.png", data)
    data = bitrate_png(rows)
    if data:
        out["tracking_bitrate_HOTA"] = run.write_artifact("robustness/tracking_bitrate_HOTA.png", data)
    return out
