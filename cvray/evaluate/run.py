"""Write one evaluation as a run: every number as a Parquet table, every plot as a PNG artifact.

Tables: ``coco_stats`` (one row per stat), ``per_class`` (AP, AP50, VOC AP50), ``pr_curves``,
``confidence_curves``, ``confusion``, ``errors`` (one row per error), ``error_summary``,
``error_per_class``, ``error_per_size``. Artifacts: ``plots/pr_<category>.png``,
``plots/confidence_all.png``, ``plots/confusion.png``, ``failures/<type>/<n>.png``.
``cvray report RUN`` renders them into one HTML page.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from cvray.evaluate.coco import STAT_KEYS, CocoEvalResult
from cvray.evaluate.config import EvalConfig
from cvray.evaluate.confusion import ConfusionMatrix
from cvray.evaluate.curves import (confidence_curve_rows, plot_confidence_curves, plot_confusion,
                                   plot_pr_curve, pr_curve_rows)
from cvray.evaluate.errors import analyze_errors
from cvray.evaluate.matching import collect_classes, match_images, prepare_images
from cvray.evaluate.overlays import render_failure, select_failures
from cvray.evaluate.tables import rows_to_table
from cvray.evaluate.voc import voc_evaluate

__all__ = ["write_eval_run", "eval_tables"]

log = logging.getLogger(__name__)



def eval_tables(gt: dict, preds: list[dict], result: CocoEvalResult, cfg: EvalConfig) -> tuple[dict, dict, Any]:
    """(tables, png artifacts, error analysis) for one evaluation; no I/O."""
    names = result.category_names
    voc = voc_evaluate(gt, [p for p in preds if "bbox" in p]) if result.iou_type == "bbox" else None
    per_class = [{**r, "VOC_AP50": voc.per_class_ap[r["category_id"]] if voc else float("nan")}
                 for r in result.per_class_rows()]
    pr = pr_curve_rows(result, 0.5) + pr_curve_rows(result, None)
    images = prepare_images(gt, preds, result.iou_type, max_dets=cfg.errors.max_dets)
    classes = collect_classes(images, match_images(images, cfg.curves.iou), result.category_ids)
    conf_rows = confidence_curve_rows(classes, np.linspace(0, 1, cfg.curves.thresholds))
    cm = ConfusionMatrix(result.category_ids, iou_threshold=cfg.curves.iou,
                         score_threshold=cfg.curves.confusion_score)
    cm.update_coco(gt, [{**p, "bbox": box} for p, box in _segm_boxes(preds)])
    errors = analyze_errors(gt, preds, result.iou_type, cfg.errors)
    tables = {
        "coco_stats": rows_to_table("coco_stats", [{"iou_type": result.iou_type, "stat": k, "value": result.stats[k]} for k in STAT_KEYS]),
        "per_class": rows_to_table("per_class", per_class),
        "pr_curves": rows_to_table("pr_curves", pr),
        "confidence_curves": rows_to_table("confidence_curves", conf_rows),
        "confusion": rows_to_table("confusion", cm.to_rows()),
        "errors": rows_to_table("errors", [{k: v for k, v in r.items()} for r in errors.errors]),
        "error_summary": rows_to_table("error_summary", errors.summary),
        "error_per_class": rows_to_table("error_per_class", errors.per_class),
        "error_per_size": rows_to_table("error_per_size", errors.per_size),
    }
    pngs: dict[str, bytes] = {}
    for c in result.category_ids:
        rows = [r for r in pr if r["category_id"] == c]
        if rows:
            pngs[f"plots/pr_{c}.png"] = plot_pr_curve(rows, f"{names.get(c, c)} ({c})")
    all_rows = [r for r in conf_rows if r["category_id"] == -1]
    if all_rows:
        pngs["plots/confidence_all.png"] = plot_confidence_curves(all_rows, "all classes")
    pngs["plots/confusion.png"] = plot_confusion(cm.compute(), [names.get(c, str(c)) for c in result.category_ids]
                                                 + ["background"])
    return tables, pngs, errors


def _segm_boxes(preds: list[dict]):
    from pycocotools import mask as mask_utils

    for p in preds:
        yield p, p.get("bbox") or [float(v) for v in mask_utils.toBbox(p["segmentation"])]


def _failure_pngs(gt: dict, preds: list[dict], errors, images_root: str | None, k: int) -> dict[str, bytes]:
    if not images_root or k == 0:
        return {}
    from cvray.data.coco import safe_join
    from cvray.data.decode import decode_image
    from cvray.io import storage

    imgs = {im["id"]: im for im in gt["images"]}
    anns = {a["id"]: a for a in gt["annotations"]}
    rows = []
    for r in errors.errors:
        a = anns.get(r["gt_id"]) if r["gt_id"] is not None else None
        rows.append({**r, "gt_area": float(a.get("area", 0)) if a else 0.0})
    out: dict[str, bytes] = {}
    cache: dict[int, Any] = {}
    for t, picked in select_failures(rows, k).items():
        for n, r in enumerate(picked):
            iid = r["image_id"]
            if iid not in cache:
                try:
                    uri = safe_join(images_root, imgs[iid]["file_name"])
                    cache[iid] = decode_image(storage.read_bytes(uri), uri)
                except Exception as exc:  # a missing image only costs its thumbnail
                    log.warning("failure gallery: cannot read image %s: %s", iid, exc)
                    cache[iid] = None
            img = cache[iid]
            if img is None:
                continue
            gt_box = anns[r["gt_id"]]["bbox"] if r["gt_id"] is not None else None
            p = preds[r["result_index"]] if r["result_index"] is not None else None
            dt_box = (p.get("bbox") or next(_segm_boxes([p]))[1]) if p is not None else None
            cap = f"{t} img {iid}" + (f" s={r['score']:.2f}" if r["score"] is not None else "")
            out[f"failures/{t}/{n:03d}.png"] = render_failure(img, gt_box, dt_box, cap)
    return out


def write_eval_run(run: Any, gt: dict, preds: list[dict], result: CocoEvalResult, cfg: EvalConfig, *,
                   images_root: str | None = None) -> dict[str, Any]:
    """Write every table and artifact of one evaluation into ``run``; returns what it wrote.

    ``cfg`` is the ``eval`` section; the run (and its manifest) belong to the caller's run context.
    """
    tables, pngs, errors = eval_tables(gt, preds, result, cfg)
    pngs.update(_failure_pngs(gt, preds, errors, images_root, cfg.errors.top_k))
    for name, t in tables.items():
        run.write_table(name, t)
    for rel, data in pngs.items():
        run.write_artifact(rel, data)
    return {"tables": sorted(tables), "failures_rendered": sum(1 for k in pngs if k.startswith("failures/"))}
