"""FP32 vs INT8 on the corruption suite (pure: no Ray).

The very cells of ``cvray robustness``: the clean split plus every corruption x severity, each
image corrupted by :func:`cvray.robustness.corruptions.corrupt` with the generator
:func:`~cvray.robustness.corruptions.corruption_rng` (seed, image id, corruption, severity) -- the
same pixels a robustness suite with the same seed scores -- and both variants run on the same
corrupted images (each image is corrupted once per cell, then fed to both). Per cell and variant:
COCO box AP / AP50, small-object recall (``ARs``: recall at 100 detections of objects under 32^2
px) and mask AP; rPC per corruption by :func:`cvray.robustness.metrics.robustness_summary`.

Tracking (``--suite-mot``): the cells of a MOT robustness suite (model detector only), each
variant's detections fed to the ``track`` section's tracker by
:func:`cvray.robustness.tracking.run_tracking_cell` -- HOTA / IDF1 / MOTA / ID switches.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from cvray.robustness.records import CLEAN

__all__ = ["delta_rows", "detection_suite", "tracking_deltas", "tracking_suite"]

_STATS = ("AP", "AP50", "ARs")


def _coco(gt: dict, results: list[dict], iou_type: str) -> dict[str, float | None]:
    from cvray.evaluate.coco import coco_evaluate

    if not results:
        return {f"{iou_type}_{s}": 0.0 for s in _STATS}
    st = coco_evaluate(gt, results, iou_type).stats
    return {f"{iou_type}_{s}": (float(st[s]) if st.get(s) is not None and st[s] == st[s] and st[s] >= 0 else None)
            for s in _STATS}


def _cells(corruptions: list[str], severities: list[int]) -> list[tuple[str, int]]:
    return [(CLEAN, 0)] + [(c, s) for c in corruptions for s in severities]


def detection_suite(predictors: dict[str, Any], *, units: list[dict], gt: dict, geometry, corruptions: list[str],
                    severities: list[int], seed: int, batch_size: int = 4, masks: bool = True,
                    on_progress: Callable[..., None] | None = None) -> list[dict[str, Any]]:
    """One row per (variant, cell): ``{variant, corruption, family, severity, images, detections,
    bbox_AP, bbox_AP50, bbox_ARs, segm_AP}``; ``predictors`` maps a variant name to its Predictor."""
    from cvray.predict.engine import rows_to_results
    from cvray.predict.preprocess import preprocess_batch
    from cvray.predict.records import to_coco_results
    from cvray.predict.sources import read_unit
    from cvray.robustness.corruptions import corrupt, corruption_rng, family

    decoded = [row for u in units for row in read_unit(u)]
    cells = _cells(corruptions, severities)
    out: list[dict[str, Any]] = []
    for k, (name, sev) in enumerate(cells, 1):
        t0 = time.perf_counter()
        rows = []
        for row in decoded:
            if name != CLEAN and row.get("ok"):
                try:
                    row = {**row, "image": corrupt(row["image"], name, sev,
                                                   corruption_rng(seed, int(row["image_id"]), name, sev))}
                except Exception as exc:  # one image never ends the cell
                    row = {**row, "ok": False, "rule": "robustness.corruption_failed", "error": str(exc)}
            rows.append(row)
        for variant, predictor in predictors.items():
            dets = []
            for start in range(0, len(rows), batch_size):
                buf = rows[start:start + batch_size]
                batch = preprocess_batch({key: np.array([r[key] for r in buf] + [None], dtype=object)[:-1]
                                          for key in buf[0]}, geometry)
                res = predictor(batch)
                d, _ = rows_to_results({key: res[key][j] for key in res} for j in range(len(res["image_id"])))
                dets.extend(d)
            results = to_coco_results(dets)
            ids = {d.image_id for d in dets}
            gt_cell = {**gt, "images": [im for im in gt["images"] if im["id"] in ids],
                       "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}
            stats = _coco(gt_cell, [{kk: v for kk, v in r.items() if kk != "segmentation"} for r in results], "bbox")
            if masks:
                stats.update(_coco(gt_cell, [r for r in results if "segmentation" in r], "segm"))
            out.append({"variant": variant, "corruption": name, "severity": sev, "images": len(ids),
                        "family": CLEAN if name == CLEAN else family(name), "detections": len(results),
                        "wall_s": time.perf_counter() - t0, **stats})
        if on_progress is not None:
            on_progress(k, len(cells), cell=f"{name}/{sev}")
    return out


def _rpc(rows: list[dict], variant: str, metric: str = "bbox_AP") -> dict[str, float | None]:
    """rPC per corruption (mean over its severities / clean) for one variant."""
    from cvray.robustness.metrics import robustness_summary

    mine = [{"model": variant, **r} for r in rows if r["variant"] == variant]
    names = tuple(dict.fromkeys(r["corruption"] for r in mine if r["corruption"] != CLEAN))
    sevs = tuple(sorted({int(r["severity"]) for r in mine if r["corruption"] != CLEAN}))
    s = robustness_summary(mine, benchmark=names, severities=sevs, metrics=(metric,)).get(variant, {}).get(metric)
    if not s or not s.get("P"):
        return {}
    return {c: (v / s["P"] if v is not None else None) for c, v in s["per_corruption"].items()} | {
        "_mPC": s["mPC"], "_rPC": s["rPC"], "_P": s["P"]}


def _pairs(rows: list[dict], cell: str, a: str, b: str):
    """``(cell name, severity, row of variant a, row of variant b)`` for every cell both ran, in
    the order variant ``a``'s rows came."""
    by = {(r["variant"], r[cell], int(r["severity"])): r for r in rows}
    for (variant, name, sev), ra in by.items():
        if variant == a and (b, name, sev) in by:
            yield name, sev, ra, by[(b, name, sev)]


def _delta(a, b):
    return (b - a) if a is not None and b is not None else None


def delta_rows(rows: list[dict], *, model: str, seed: int, a: str = "fp32", b: str = "int8") -> tuple[list[dict], dict]:
    """``int8_deltas`` rows (variant ``b`` - variant ``a`` per cell) and the suite's summary."""
    from cvray.export.records import DELTA_METRICS

    rpc = {v: _rpc(rows, v) for v in (a, b)}
    out = []
    for name, sev, ra, rb in _pairs(rows, "corruption", a, b):
        row = {"model": model, "corruption": name, "family": ra["family"], "severity": sev, "seed": seed,
               "images": ra["images"], "fp32_detections": ra["detections"], "int8_detections": rb["detections"]}
        for stem, key in DELTA_METRICS:
            row[f"fp32_{stem}"], row[f"int8_{stem}"] = ra.get(key), rb.get(key)
            row[f"delta_{stem}"] = _delta(ra.get(key), rb.get(key))
        if name != CLEAN:
            row["fp32_rPC"], row["int8_rPC"] = rpc[a].get(name), rpc[b].get(name)
            row["delta_rPC"] = _delta(row["fp32_rPC"], row["int8_rPC"])
        out.append(row)
    corrupted = [r for r in out if r["corruption"] != CLEAN]

    def mean(key):
        v = [r[key] for r in corrupted if r.get(key) is not None]
        return float(np.mean(v)) if v else None

    clean = next((r for r in out if r["corruption"] == CLEAN), {})
    summary = {"cells": len(out), "clean_delta_bbox_AP": clean.get("delta_bbox_AP"),
               "clean_delta_bbox_ARs": clean.get("delta_bbox_ARs"),
               "mean_delta_bbox_AP": mean("delta_bbox_AP"), "mean_delta_bbox_AP50": mean("delta_bbox_AP50"),
               "mean_delta_bbox_ARs": mean("delta_bbox_ARs"), "mean_delta_segm_AP": mean("delta_segm_AP"),
               "fp32_mPC": rpc[a].get("_mPC"), "int8_mPC": rpc[b].get("_mPC"),
               "fp32_rPC": rpc[a].get("_rPC"), "int8_rPC": rpc[b].get("_rPC"),
               "delta_rPC": _delta(rpc[a].get("_rPC"), rpc[b].get("_rPC"))}
    if corrupted:
        worst = min((r for r in corrupted if r.get("delta_bbox_AP") is not None),
                    key=lambda r: r["delta_bbox_AP"], default=None)
        if worst is not None:
            summary["worst_cell"] = {"corruption": worst["corruption"], "severity": worst["severity"],
                                     "delta_bbox_AP": worst["delta_bbox_AP"]}
    return out, summary


def tracking_suite(predictors: dict[str, Any], *, mot_root: str, geometry, track_config, corruptions: list[str],
                   severities: list[int], seed: int, batch_size: int = 4, max_frames: int | None = None,
                   on_progress: Callable[..., None] | None = None) -> list[dict[str, Any]]:
    """One ``tracking_robustness``-style row per (variant, cell), the model detecting."""
    from cvray.robustness.tracking import TrackCell, load_sequences, run_tracking_cell

    seqs = load_sequences(mot_root, max_frames=max_frames)
    cells = _cells(corruptions, severities)
    out = []
    for k, (name, sev) in enumerate(cells, 1):
        for variant, predictor in predictors.items():
            res = run_tracking_cell(TrackCell(variant, "model", name, sev), seqs=seqs, predictor=predictor,
                                    geometry=geometry, track_config=track_config, seed=seed, batch_size=batch_size)
            out.append({"variant": variant, **res.row})
        if on_progress is not None:
            on_progress(k, len(cells), cell=f"track {name}/{sev}")
    return out


def tracking_deltas(rows: list[dict], *, model: str, seed: int, a: str = "fp32", b: str = "int8"
                    ) -> tuple[list[dict], dict]:
    """``int8_tracking_deltas`` rows and their summary (mean IDSW delta over corrupted cells)."""
    from cvray.export.records import TRACK_METRICS

    out = []
    for name, sev, ra, rb in _pairs(rows, "condition", a, b):
        row = {"model": model, "condition": name, "family": ra["family"], "severity": sev, "seed": seed,
               "sequences": ra["sequences"], "frames": ra["frames"]}
        for m in (*TRACK_METRICS, "IDSW"):
            row[f"fp32_{m}"], row[f"int8_{m}"] = ra.get(m), rb.get(m)
            row[f"delta_{m}"] = _delta(ra.get(m), rb.get(m))
        out.append(row)
    corrupted = [r for r in out if r["condition"] != CLEAN]
    clean = next((r for r in out if r["condition"] == CLEAN), {})
    summary = {"cells": len(out), "clean_delta_IDSW": clean.get("delta_IDSW"),
               "clean_delta_HOTA": clean.get("delta_HOTA"),
               "mean_delta_IDSW": float(np.mean([r["delta_IDSW"] for r in corrupted])) if corrupted else None,
               "mean_delta_HOTA": float(np.mean([r["delta_HOTA"] for r in corrupted])) if corrupted else None}
    return out, summary
