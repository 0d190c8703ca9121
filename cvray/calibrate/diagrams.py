"""Reliability diagrams (PNG) of a ``CalibrationResult``: overall, and one grid of per-class panels.

A reliability diagram (DeGroot & Fienberg 1983; used for detectors by Küppers et al. 2020) shows,
per confidence bin, the observed precision (LaECE: precision × IoU) against the mean confidence.
A calibrated detector's bars sit on the diagonal; the shaded gap between bar top and diagonal is
what the error sums, weighted by the bin's count. Per class we draw one file with a grid of small
panels (rather than one file per class), so 80 COCO classes stay one artifact to open.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cvray.report.figures import plt as _plt
from cvray.report.figures import png as _png

__all__ = ["reliability_diagram", "per_class_reliability_diagram"]


def _panel(ax, r, title: str, small: bool = False) -> None:
    # 1. bars of per-bin precision at the bin centres; 2. the gap to the mean confidence; 3. diagonal
    w = np.diff(r.edges)
    centre = r.edges[:-1] + w / 2
    ok = r.counts > 0
    ax.bar(centre[ok], r.accuracy[ok], width=w[ok], color="tab:blue", edgecolor="k", lw=0.4,
           label=r.target)
    lo = np.minimum(r.accuracy[ok], r.confidence[ok])
    ax.bar(centre[ok], np.abs(r.confidence[ok] - r.accuracy[ok]), bottom=lo, width=w[ok] * 0.9,
           color="tab:red", alpha=0.35, hatch=None if small else "//", label="gap")
    ax.plot(r.confidence[ok], r.accuracy[ok], "k.", ms=2 if small else 4)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    value = "n/a" if not np.isfinite(r.value) else f"{r.value:.4f}"
    ax.set_title(f"{title}  {r.metric.upper()}={value}  (n={r.n})", fontsize=6 if small else 9)
    if small:
        ax.tick_params(labelsize=5)
    else:
        ax.set_xlabel("confidence")
        ax.set_ylabel(r.target)
        ax.legend(loc="upper left", fontsize=7)


def _thr(r) -> str:
    parts = [f"{name}≥{v:g}" for name, v in (("IoU", r.iou_thr), ("score", r.score_thr)) if v is not None]
    return f" ({', '.join(parts)})" if parts else ""


def _write(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png(fig))
    return path


def reliability_diagram(result, path, title: str | None = None) -> Path:
    """Write the overall reliability diagram of ``result`` to ``path`` (PNG); returns the path."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    _panel(ax, result, (title or "reliability") + _thr(result))
    return _write(fig, path)


def per_class_reliability_diagram(result, path, title: str | None = None,
                                  class_names: dict[int, str] | None = None) -> Path:
    """Write one PNG with a small reliability panel per class of ``result.per_class``."""
    if not result.per_class:
        raise ValueError(f"{result.metric} result has no per-class breakdown (pass labels when computing it)")
    classes = sorted(result.per_class)
    cols = math.ceil(math.sqrt(len(classes)))
    rows = math.ceil(len(classes) / cols)
    plt = _plt()
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    for ax, c in zip(axes.flat, classes):
        _panel(ax, result.per_class[c], (class_names or {}).get(c, str(c)), small=True)
    for ax in list(axes.flat)[len(classes):]:
        ax.axis("off")
    value = "n/a" if not np.isfinite(result.value) else f"{result.value:.4f}"
    fig.suptitle(f"{title or 'per-class reliability'}: {result.metric.upper()}={value}{_thr(result)}", fontsize=9)
    return _write(fig, path)


def policy_degradation_plot(rows: list[dict], path, targets: dict) -> Path:
    """Where the act / observe / abstain policy degrades: per corruption, against severity (0 = the
    clean eval slice), the precision of the acted detections, the recall of act + observe and the
    abstention rate, with the targets as dashed lines (``rows``: ``policy_slices`` rows)."""
    plt = _plt()
    overall = [r for r in rows if r["category_id"] is None and r["role"] == "eval" and r["corruption"] != "*"]
    clean = next((r for r in overall if r["corruption"] == "clean"), None)
    corruptions = sorted({r["corruption"] for r in overall if r["corruption"] != "clean"})
    panels = (("act_precision", "precision of acted", targets.get("act_precision")),
              ("seen_recall", "recall of act + observe", targets.get("observe_recall")),
              ("abstain_rate", "abstention rate", None))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, (key, name, target) in zip(axes, panels):
        series = corruptions or ["clean"]
        for c in series:
            pts = sorted((r["severity"], r[key]) for r in overall if r["corruption"] == c and r[key] is not None)
            if clean is not None and c != "clean" and clean[key] is not None:
                pts = [(0, clean[key]), *pts]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, lw=1, label=c)
        if target is not None:
            ax.axhline(target, color="k", ls="--", lw=0.8, label="target")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_title(name, fontsize=9)
    axes[0].legend(fontsize=6, loc="lower left", ncol=2)
    fig.suptitle(f"decision policy by slice (act precision >= {targets.get('act_precision')}, "
                 f"observe recall >= {targets.get('observe_recall')})", fontsize=9)
    return _write(fig, path)
