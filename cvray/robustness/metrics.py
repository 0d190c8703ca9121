"""P, mPC and rPC as the COCO-C benchmark defines them (Michaelis et al. 2019), from the
``robustness`` table's rows (pure; no Ray).

* P = the model's AP on clean images;
* mPC = (1 / N_c) sum_c (1 / N_s) sum_s P_{c,s} over the 15 benchmark corruptions c and the 5
  severities s -- holdout corruptions and extras are reported beside it, never mixed in;
* rPC = mPC / P.

Per corruption (mean over its severities), per family (noise / blur / weather / digital) and per
severity (mean over the benchmark corruptions), for boxes (``bbox_AP``) and masks (``segm_AP``).
A summary over an incomplete grid says so (``complete: false`` and the cells it has).
"""
from __future__ import annotations

from statistics import fmean
from typing import Any, Iterable

from cvray.robustness.records import CLEAN

__all__ = ["robustness_summary", "tracking_summary"]


def _mean(vals: Iterable[float | None]) -> float | None:
    v = [float(x) for x in vals if x is not None and x == x]
    return fmean(v) if v else None


def _model_summary(rows: list[dict], metric: str, benchmark: tuple[str, ...], holdout: tuple[str, ...],
                   extras: tuple[str, ...], families: dict[str, tuple[str, ...]],
                   severities: tuple[int, ...]) -> dict[str, Any]:
    clean = [r[metric] for r in rows if r["corruption"] == CLEAN and r.get(metric) is not None]
    p = clean[0] if clean else None
    cells = {(r["corruption"], int(r["severity"])): r.get(metric) for r in rows if r["corruption"] != CLEAN}

    def per_corruption(names):
        out = {}
        for c in names:
            vals = [cells[(c, s)] for s in severities if (c, s) in cells]
            if vals:
                out[c] = _mean(vals)
        return out

    bench = per_corruption(benchmark)
    # mPC: mean over corruptions of the mean over severities (the paper's order of averaging)
    mpc = _mean(bench.values()) if bench else None
    have = sum((c, s) in cells for c in benchmark for s in severities)
    out: dict[str, Any] = {
        "P": p, "mPC": mpc, "rPC": (mpc / p) if (mpc is not None and p) else None,
        "benchmark_cells": have, "complete": have == len(benchmark) * len(severities) and p is not None,
        "per_corruption": bench,
        "per_family": {f: _mean(bench[c] for c in names if c in bench) for f, names in families.items()
                       if any(c in bench for c in names)},
        "per_severity": {s: _mean(cells[(c, s)] for c in benchmark if (c, s) in cells) for s in severities
                         if any((c, s) in cells for c in benchmark)},
    }
    hold = per_corruption(holdout)
    if hold:
        out["holdout"] = {"mPC": _mean(hold.values()), "per_corruption": hold}
    ext = per_corruption(extras)
    if ext:
        out["extras"] = {"mPC": _mean(ext.values()), "per_corruption": ext}
    return out


def robustness_summary(rows: list[dict], *, benchmark: tuple[str, ...], holdout: tuple[str, ...] = (),
                       extras: tuple[str, ...] = (), families: dict[str, tuple[str, ...]] | None = None,
                       severities: tuple[int, ...] = (1, 2, 3, 4, 5),
                       metrics: tuple[str, ...] = ("bbox_AP", "segm_AP")) -> dict[str, dict[str, Any]]:
    """``{model: {metric: {P, mPC, rPC, per_corruption, per_family, per_severity, holdout, extras}}}``
    (a metric no row has, e.g. ``segm_AP`` of a box-only model, is left out)."""
    out: dict[str, dict[str, Any]] = {}
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model]
        out[model] = {m: _model_summary(mine, m, benchmark, holdout, extras, families or {}, severities)
                      for m in metrics if any(r.get(m) is not None for r in mine)}
    return out


def tracking_summary(rows: list[dict], *, metrics: tuple[str, ...] = ("HOTA", "IDF1")) -> dict[str, Any]:
    """``tracking_robustness`` rows -> ``{detector: {HOTA: {P, mPC, rPC, ...}, IDF1: {...}, IDSW:
    {clean, mean_corrupted}, compression: [{condition, codec, crf, bitrate_kbps, psnr_db, HOTA,
    IDF1, IDSW}]}}``: the COCO-C averages (:func:`robustness_summary`'s rules) with HOTA / IDF1 in
    the place of AP, and the compression tiers listed by bitrate, never averaged into mPC."""
    from cvray.robustness.corruptions import BENCHMARK, EXTRAS, FAMILIES, HOLDOUT

    out: dict[str, Any] = {}
    for det in sorted({r["detector"] for r in rows}):
        mine = [{**r, "corruption": r["condition"]} for r in rows if r["detector"] == det]
        grid = [r for r in mine if r["kind"] in ("clean", "corruption")]
        d: dict[str, Any] = {m: _model_summary(grid, m, BENCHMARK, HOLDOUT, EXTRAS, FAMILIES, (1, 2, 3, 4, 5))
                             for m in metrics}
        clean = [r["IDSW"] for r in grid if r["kind"] == "clean"]
        d["IDSW"] = {"clean": clean[0] if clean else None,
                     "mean_corrupted": _mean(r["IDSW"] for r in grid if r["kind"] == "corruption")}
        comp = sorted((r for r in mine if r["kind"] == "compression"),
                      key=lambda r: (r["codec"] or "", -(r["bitrate_kbps"] or 0)))
        if comp:
            d["compression"] = [{k: r[k] for k in ("condition", "codec", "crf", "bitrate_kbps", "psnr_db", "HOTA",
                                                   "IDF1", "IDSW")} for r in comp]
        out[det] = d
    return out
