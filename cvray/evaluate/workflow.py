"""The eval stage's workflow: ``prepare_eval`` (read the ground truth and the predictions) →
``run_eval`` (COCO AP; with ``save`` every number as a Parquet table, every plot as a PNG).

Example::

    inputs = prepare_eval(gt="instances_val.json", pred="<predict run>", iou_type="bbox", save=True)
    with run_context("eval", cfg, dataset=lambda: eval_fingerprint(inputs)) as run:
        summary = run_eval(run, cfg.eval, inputs)

Tables (``save``): ``coco_stats`` (one row per stat), ``per_class`` (AP, AP50, VOC AP50), ``pr_curves``,
``confidence_curves``, ``confusion``, ``errors`` (one row per error), ``error_summary``,
``error_per_class``, ``error_per_size``. Artifacts: ``plots/pr_<category>.png``,
``plots/confidence_all.png``, ``plots/confusion.png``, ``failures/<type>/<n>.png``.
``cvray report RUN`` renders them into one HTML page.
"""
from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field
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

__all__ = ["EvalInputs", "eval_fingerprint", "eval_tables", "prepare_eval", "run_eval", "write_eval_run"]

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


@dataclass(frozen=True)
class EvalInputs:
    gt_uri: str
    pred_uri: str
    iou_type: str = "bbox"
    save: bool = False                  # also write every table and plot into the run
    images_root: str | None = None      # images of the GT, for the failure overlays
    gt: dict = field(default_factory=dict, repr=False)
    preds: list = field(default_factory=list, repr=False)
    #: how predictions were paired with GT images: {"matched_by": "file_name" | "image_id", counts}
    matching: dict = field(default_factory=dict)


def default_images_root(gt_uri: str) -> str | None:
    """COCO layout ``<root>/annotations/x.json`` + ``<root>/images``; None when absent."""
    from cvray.io import storage

    parent = posixpath.dirname(posixpath.dirname(gt_uri.rstrip("/")))
    cand = storage.join(parent or ".", "images")
    return cand if storage.list_files(cand) else None


def prepare_eval(*, gt: str, pred: str, iou_type: str = "bbox", save: bool = False,
                 images_root: str | None = None) -> EvalInputs:
    """Read both sides; :class:`~cvray.runs.errors.InputError` names the file that cannot be used."""
    from cvray.data.coco import load_coco
    from cvray.evaluate.loaders import load_prediction_images, match_to_gt
    from cvray.runs.errors import InputError

    gt_dict = load_coco(gt)
    preds, names = load_prediction_images(pred)
    preds, matching = match_to_gt(preds, names, gt_dict, pred_uri=pred, gt_uri=gt)
    if iou_type == "segm" and preds and "segmentation" not in preds[0]:
        raise InputError(f"{pred}: --iou-type segm needs mask predictions (RLE 'segmentation')")
    if save and images_root is None:
        images_root = default_images_root(gt)
    return EvalInputs(gt_uri=gt, pred_uri=pred, iou_type=iou_type, save=save, images_root=images_root,
                      gt=gt_dict, preds=preds, matching=matching)


def eval_fingerprint(inputs: EvalInputs) -> dict[str, Any]:
    from cvray.data.fingerprint import coco_fingerprint

    return {**coco_fingerprint({"gt": inputs.gt_uri}), "pred": inputs.pred_uri}


def run_eval(run: Any, section: EvalConfig, inputs: EvalInputs) -> dict[str, Any]:
    """COCO-evaluate; the 12 stats at the top of the summary, the rest under ``details``."""
    from cvray.evaluate.coco import CocoEvalError, coco_evaluate
    from cvray.runs.errors import InputError

    try:
        result = coco_evaluate(inputs.gt, inputs.preds, inputs.iou_type)
    except CocoEvalError as exc:
        raise InputError(f"{inputs.pred_uri}: {exc}") from exc
    summary: dict = {k: result.stats[k] for k in STAT_KEYS}
    run.summary.update(summary)
    matching = inputs.matching or {"matched_by": "image_id"}
    run.summary.update(iou_type=result.iou_type, images=result.num_images, predictions=result.num_predictions,
                       matched_by=matching["matched_by"], matching=matching)
    details = {"iou_type": inputs.iou_type, "gt": inputs.gt_uri, "pred": inputs.pred_uri,
               "images": result.num_images, "predictions": result.num_predictions,
               "matched_by": matching["matched_by"], "matching": matching,
               # NaN (class without GT) as null: the --json output stays strict JSON
               "per_class": [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
                             for r in result.per_class_rows()]}
    if inputs.save:
        wrote = write_eval_run(run, inputs.gt, inputs.preds, result, section, images_root=inputs.images_root)
        run.summary["failures_rendered"] = wrote["failures_rendered"]
    summary["details"] = details
    return summary
