"""``run_calibrate``: the calibration stage's entry point -- a model and a COCO dataset in; the
calibrators fitted on the fit split (clean) and applied to every slice of the eval split (clean
and each corruption x severity); ECE / D-ECE / LaECE before and after in the ``calibration`` table,
the reliability diagrams' bins in ``calibration_bins``, PNG diagrams in the artifacts, and the
saved calibrator ``<run>/calibrator.json`` that ``cvray predict`` applies
(``predict.calibrator=<run>``); with ``calibrate.policy`` targets also the act / observe / abstain
policy ``<run>/policy.json`` chosen on the fit slice and its ``policy_slices`` table
(:mod:`cvray.calibrate.policy_report`; ``predict.policy=<run>`` tags the detections).

A slice is the unit of work: predict its images (corrupted as ``cvray robustness`` corrupts them)
and match the detections to the ground truth (:class:`SliceWorker`, no Ray); the matches come back
to the driver, which fits on the fit slice only and scores every eval slice (cheap numpy).

Example::

    from cvray.config import load_config
    from cvray.runs import run_context
    from cvray.calibrate.workflow import prepare_calibrate, run_calibrate

    cfg = load_config(None, ["calibrate.corruptions=fog", "calibrate.severities=1,3"])
    inputs = prepare_calibrate(cfg.calibrate, cfg.predict, model="cvray-runs/<train run>",
                               data="./synth/coco", seed=cfg.seed)
    with run_context("calibrate", cfg, ray=True) as run:
        summary = run_calibrate(run, cfg.calibrate, inputs, ray=True)
    summary["eval"]["test/clean/0"]["temperature"]["ece"]
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from cvray.calibrate.config import CalibrateConfig
from cvray.io import storage
from cvray.runs.errors import InputError
from cvray.runs.tables import declare

__all__ = ["CALIBRATION_SCHEMA", "CALIBRATION_BINS_SCHEMA", "CalibrateInputs", "Slice", "SliceWorker",
           "prepare_calibrate", "run_calibrate"]

log = logging.getLogger(__name__)

CLEAN = "clean"
UNCALIBRATED = "uncalibrated"
METRICS = ("ece", "dece", "laece")
INPUTS_FILE = "calibrate_inputs.json"

_SLICE_COLS = [pa.field("model", pa.string()), pa.field("role", pa.string()), pa.field("split", pa.string()),
               pa.field("corruption", pa.string()), pa.field("severity", pa.int64()),
               pa.field("method", pa.string()), pa.field("metric", pa.string()),
               pa.field("category_id", pa.int64())]

CALIBRATION_SCHEMA = declare("calibration", [
    *_SLICE_COLS[:5], pa.field("family", pa.string()), *_SLICE_COLS[5:],
    pa.field("fit_split", pa.string()),
    pa.field("value", pa.float64()),
    pa.field("bins", pa.string()),
    pa.field("nonempty_bins", pa.int64()),
    pa.field("iou_thr", pa.float64()),
    pa.field("score_thr", pa.float64()),
    pa.field("n", pa.int64()),
    pa.field("tp", pa.int64()),
    pa.field("images", pa.int64()),
], version=1)

CALIBRATION_BINS_SCHEMA = declare("calibration_bins", [
    *_SLICE_COLS,
    pa.field("bin", pa.int64()),
    pa.field("lo", pa.float64()),
    pa.field("hi", pa.float64()),
    pa.field("count", pa.int64()),
    pa.field("confidence", pa.float64()),
    pa.field("accuracy", pa.float64()),
], version=1)


@dataclass(frozen=True)
class Slice:
    """One unit of work: a split's images, clean or under one corruption x severity."""

    role: str        # "fit" (the calibrators are fitted on it) | "eval"
    split: str       # the split's label ("val", "test", or "val/even" / "val/odd" when halved)
    corruption: str  # CLEAN or a corruption name
    severity: int    # 0 for clean

    @property
    def name(self) -> str:
        return f"{self.role}__{self.split.replace('/', '-')}__{self.corruption}__s{self.severity}"

    @property
    def label(self) -> str:
        return f"{self.split}/{self.corruption}/{self.severity}"


@dataclass(frozen=True)
class SplitInputs:
    label: str
    gt_uri: str
    units: list[dict] = field(repr=False)

    @property
    def image_ids(self) -> list[int]:
        return [int(u["image_id"]) for u in self.units]


@dataclass(frozen=True)
class CalibrateInputs:
    """The resolved inputs: model, the two splits (disjoint images), the corruption slices."""

    model: Any
    model_name: str
    model_source: str
    category_ids: list[int]
    class_names: dict[int, str]
    fit: SplitInputs
    eval: SplitInputs
    corruptions: list[str]
    severities: list[int]
    seed: int
    predict: Any = field(repr=False)
    split_note: str | None = None   # how the splits were chosen when the dataset has no eval split
    spec: dict = field(default_factory=dict, repr=False)

    def slices(self) -> list[Slice]:
        return [Slice("fit", self.fit.label, CLEAN, 0), Slice("eval", self.eval.label, CLEAN, 0),
                *(Slice("eval", self.eval.label, c, s) for c in self.corruptions for s in self.severities)]


def _annotations(data: str, split: str) -> str:
    return storage.join(data, "annotations", f"instances_{split}.json")


def _model_name(model: str) -> str:
    base = model.rstrip("/").rsplit("/", 1)[-1]
    return base[: -len(".pt")] if base.endswith(".pt") else base


def _load(ann: str) -> dict:
    from cvray.data.coco import DatasetError, load_coco

    try:
        gt = load_coco(ann)
    except DatasetError as exc:
        raise InputError(f"{ann}: {exc}") from None
    if not gt.get("images"):
        raise InputError(f"{ann}: no images")
    return gt


def prepare_calibrate(section: CalibrateConfig, predict: Any, *, model: str, data: str, seed: int = 0,
                      robustness: dict | None = None) -> CalibrateInputs:
    """Resolve the splits (disjoint images, or a stated halving), the model and the slices.

    ``robustness`` is a robustness run's ``robustness_inputs.json``: its corruptions, severities
    and seed replace the section's, so the slices are exactly the suite's.
    """
    from cvray.predict.model_spec import ModelSpecError, require_num_classes, resolve_model, run_categories
    from cvray.predict.sources import list_units
    from cvray.robustness.corruptions import resolve_corruptions

    names, severities = list(section.corruptions), list(section.severities)
    seed = int(section.seed if section.seed is not None else seed)
    if robustness is not None:
        r = robustness.get("robustness") or {}
        names, severities = list(r.get("corruptions") or []), [int(s) for s in r.get("severities") or []]
        seed = int(robustness.get("seed", seed) if r.get("seed") is None else r["seed"])
    try:
        corruptions = resolve_corruptions(names) if names else []
    except ValueError as exc:
        raise InputError(f"calibrate.corruptions: {exc}") from None
    if not storage.is_s3(data):
        data = os.path.abspath(data)
    if data.lower().endswith(".json"):
        raise InputError(f"--data {data}: give the COCO root (annotations/instances_<split>.json), the "
                         "calibrators need a fit split and an eval split")
    # 1. the fit split must exist; the eval split is another split, else the fit split halved
    fit_ann = _annotations(data, section.fit_split)
    if not storage.exists(fit_ann):
        raise InputError(f"{data}: no {section.fit_split} split ({fit_ann} is missing) to fit the calibrators on")
    fit_gt = _load(fit_ann)
    eval_name = section.eval_split
    eval_ann = _annotations(data, eval_name)
    note = None
    fit_units = sorted(list_units(fit_ann), key=lambda u: int(u["image_id"]))
    if eval_name != section.fit_split and storage.exists(eval_ann):
        eval_gt = _load(eval_ann)
        eval_units = sorted(list_units(eval_ann), key=lambda u: int(u["image_id"]))
        shared = {u["file_name"] for u in fit_units} & {u["file_name"] for u in eval_units}
        if shared:
            raise InputError(f"{data}: the {section.fit_split} and {eval_name} splits share {len(shared)} images "
                             f"(e.g. {sorted(shared)[0]}); calibrators are never evaluated on images they were "
                             "fitted on")
        fit_label, eval_label = section.fit_split, eval_name
    else:
        # the documented fallback: images sorted by id, even positions fit, odd positions evaluate
        if eval_name != section.fit_split and eval_name != "test":
            raise InputError(f"{data}: no {eval_name} split ({eval_ann} is missing)")
        if len(fit_units) < 2:
            raise InputError(f"{fit_ann}: {len(fit_units)} image(s); halving it for fit / eval needs at least 2")
        eval_gt = fit_gt
        eval_ann = fit_ann
        fit_label, eval_label = f"{section.fit_split}/even", f"{section.fit_split}/odd"
        fit_units, eval_units = fit_units[0::2], fit_units[1::2]
        note = (f"no {eval_name} split: {section.fit_split} halved by image id (even positions of the sorted "
                f"ids fit the calibrators, odd positions evaluate them; {len(fit_units)} / {len(eval_units)} images)")
        log.warning("calibrate: %s", note)
    if section.max_images:
        fit_units, eval_units = fit_units[: section.max_images], eval_units[: section.max_images]
    # 2. the model's classes must be the dataset's
    cats = sorted(int(c["id"]) for c in fit_gt["categories"])
    if sorted(int(c["id"]) for c in eval_gt["categories"]) != cats:
        raise InputError(f"{eval_ann}: its categories differ from {fit_ann}'s")
    try:
        model_cfg, source = resolve_model(model, predict.model, len(cats))
        require_num_classes(model_cfg, model)
    except ModelSpecError as exc:
        raise InputError(str(exc)) from None
    trained_on = run_categories(model)
    if model_cfg.num_classes != len(cats) or (trained_on is not None and trained_on != cats):
        what = (f"was trained on {len(trained_on)} classes (category ids {trained_on})" if trained_on is not None
                else f"predicts {model_cfg.num_classes} classes")
        raise InputError(f"--model {model}: it {what} but {data} has {len(cats)} (category ids {cats}); "
                         "calibrate a model on the data of the classes it predicts")
    if model_cfg.task == "semantic":
        raise InputError(f"{model}: calibration is for detection scores; semantic models have none")
    if model.endswith((".pt", ".pth")):  # a bare checkpoint: its class count shows only when it is loaded
        from cvray.models import WeightsError, build_model

        try:
            build_model(model_cfg)
        except WeightsError as exc:
            raise InputError(f"--model {model}: does not load as {model_cfg.arch} with {len(cats)} classes "
                             f"(the categories of {data}): {str(exc).splitlines()[0][:300]}") from None
    names_by_id = {int(c["id"]): str(c.get("name", c["id"])) for c in fit_gt["categories"]}
    return CalibrateInputs(model=model_cfg, model_name=_model_name(model), model_source=source, category_ids=cats,
                           class_names=names_by_id, fit=SplitInputs(fit_label, fit_ann, fit_units),
                           eval=SplitInputs(eval_label, eval_ann, eval_units), corruptions=corruptions,
                           severities=severities, seed=seed, predict=predict, split_note=note,
                           spec={"model": model, "data": data, "fit_split": section.fit_split,
                                 "eval_split": eval_name})


# -- one slice (no Ray) ---------------------------------------------------------------------------

@dataclass
class SliceResult:
    slice: Slice
    matched: Any  # MatchedDetections
    images: int
    failed_images: int
    detections: int
    wall_s: float
    issues: list[dict] = field(default_factory=list)
    gt_counts: dict = field(default_factory=dict)  # category id -> non-crowd GT objects of the slice's images


class SliceWorker:
    """One model replica: ``run_slice(s)`` predicts a slice's images and matches them to the GT."""

    def __init__(self, model_config, category_ids, postprocess, geometry, splits: dict[str, tuple[str, list]],
                 seed: int, batch_size: int, torch_threads: int | None, iou_thr: float, score_thr: float):
        from cvray.data.coco import load_coco
        from cvray.predict.engine import ModelFactory, Predictor

        self.geometry, self.seed, self.batch_size = geometry, seed, batch_size
        self.iou_thr, self.score_thr = iou_thr, score_thr
        gts = {uri: load_coco(uri) for uri, _ in splits.values()}
        self.splits = {label: (gts[uri], units) for label, (uri, units) in splits.items()}
        self.predictor = Predictor(ModelFactory(model_config), postprocess_cfg=postprocess,
                                   category_ids=category_ids, num_threads=torch_threads)

    def run_slice(self, s: Slice) -> SliceResult:
        from cvray.calibrate.matching import match_detections
        from cvray.predict.engine import predict_local
        from cvray.predict.records import to_coco_results
        from cvray.robustness.corruptions import corrupt, corruption_rng

        t0 = time.perf_counter()
        gt, units = self.splits[s.split]

        def transform(row: dict[str, Any]) -> dict[str, Any]:
            if s.corruption == CLEAN:
                return row
            try:  # the pixels of cvray robustness's cell (seed, image id, corruption, severity)
                rng = corruption_rng(self.seed, int(row["image_id"]), s.corruption, s.severity)
                return {**row, "image": corrupt(row["image"], s.corruption, s.severity, rng)}
            except Exception as exc:  # one image never ends the slice: it becomes an issue row
                return {**row, "ok": False, "rule": "robustness.corruption_failed",
                        "error": f"{row['file_name']}: {s.corruption} severity {s.severity}: "
                                 f"{type(exc).__name__}: {exc}"}

        dets, issues = predict_local(units, self.predictor, self.geometry, batch_size=self.batch_size,
                                     transform=transform)
        results = [{k: v for k, v in r.items() if k != "segmentation"} for r in to_coco_results(dets)]
        matched = match_detections(gt, results, iou_thr=self.iou_thr, score_thr=self.score_thr)
        issues = [{**(i.__dict__ if hasattr(i, "__dict__") else dict(i)), "stage": "calibrate"} for i in issues]
        ids = {int(u["image_id"]) for u in units}
        counts: dict[int, int] = {}
        for a in gt.get("annotations", []):  # the recall's denominator (crowd regions are not objects)
            if int(a["image_id"]) in ids and not a.get("iscrowd", 0):
                counts[int(a["category_id"])] = counts.get(int(a["category_id"]), 0) + 1
        return SliceResult(s, matched, len(dets), len(units) - len(dets), len(results),
                           time.perf_counter() - t0, issues, counts)


# -- the stage ------------------------------------------------------------------------------------

def _family(corruption: str) -> str:
    if corruption == CLEAN:
        return CLEAN
    from cvray.robustness.corruptions import family

    return family(corruption)


def _rows(inputs: CalibrateInputs, res: SliceResult, method: str, fit_split: str, report: dict) -> tuple[list, list]:
    s = res.slice
    base = {"model": inputs.model_name, "role": s.role, "split": s.split, "corruption": s.corruption,
            "severity": s.severity, "method": method}
    rows, bins = [], []
    m = res.matched
    for metric, r in report.items():
        for cat, rr in [(None, r), *sorted(r.per_class.items())]:
            sel = m.tp if cat is None else m.tp[m.labels == cat]
            rows.append({**base, "family": _family(s.corruption), "metric": metric, "category_id": cat,
                         "fit_split": fit_split, "value": None if not np.isfinite(rr.value) else float(rr.value),
                         "bins": json.dumps(rr.bins, sort_keys=True), "nonempty_bins": int(rr.nonempty_bins),
                         "iou_thr": float(m.iou_thr), "score_thr": float(m.score_thr), "n": int(rr.n),
                         "tp": int(np.sum(sel)), "images": res.images})
            for b in range(len(rr.counts)):
                ok = rr.counts[b] > 0
                bins.append({**base, "metric": metric, "category_id": cat, "bin": b, "lo": float(rr.edges[b]),
                             "hi": float(rr.edges[b + 1]), "count": int(rr.counts[b]),
                             "confidence": float(rr.confidence[b]) if ok else None,
                             "accuracy": float(rr.accuracy[b]) if ok else None})
    return rows, bins


def _table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([{f: r.get(f) for f in schema.names} for r in rows], schema=schema)


def _diagrams(run, s: Slice, method: str, report: dict, class_names: dict[int, str]) -> dict[str, str]:
    from cvray.calibrate.diagrams import per_class_reliability_diagram, reliability_diagram

    out = {}
    folder = run.path("artifacts", "calibration", s.name)
    title = f"{s.label} {method}"
    for metric in ("ece", "laece"):
        r = report[metric]
        if not r.n:
            continue
        path = _local(folder, f"{method}_{metric}.png")
        out[f"{s.name}/{method}_{metric}"] = str(reliability_diagram(r, path, title))
        if r.per_class:
            out[f"{s.name}/{method}_{metric}_per_class"] = str(per_class_reliability_diagram(
                r, _local(folder, f"{method}_{metric}_per_class.png"), title, class_names))
    return out


def _local(folder: str, name: str) -> str:
    """Diagram files are written by matplotlib to a local path (S3 runs: a copy is uploaded)."""
    if storage.is_s3(folder):
        import tempfile

        return os.path.join(tempfile.mkdtemp(prefix="cvray-cal-"), name)
    return os.path.join(folder, name)


def _upload(run, paths: dict[str, str]) -> dict[str, str]:
    if not storage.is_s3(run.uri):
        return paths
    out = {}
    for key, p in paths.items():
        out[key] = run.write_artifact(f"calibration/{key}.png", open(p, "rb").read())
    return out


def run_calibrate(run, section: CalibrateConfig, inputs: CalibrateInputs, *, ray: bool = True,
                  on_progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Predict + match every slice, fit on the fit slice, score every slice before / after."""
    from cvray.calibrate.calibrators import fit_calibrator
    from cvray.calibrate.metrics import calibration_report
    from cvray.calibrate.policy import CALIBRATOR_FILE, calibrator_record, ids_fingerprint
    from cvray.runs.issues import issues_to_table

    storage.write_json(run.path(INPUTS_FILE), {**inputs.spec, "seed": inputs.seed, "split_note": inputs.split_note,
                                               "calibrate": section.model_dump(mode="json"),
                                               "predict": inputs.predict.model_dump(mode="json")})
    run.update(model={"source": inputs.model_source, "config": inputs.model.model_dump(mode="json")})
    slices = inputs.slices()
    args = dict(model_config=inputs.model, category_ids=inputs.category_ids, postprocess=inputs.predict.postprocess,
                geometry=inputs.predict.geometry, seed=inputs.seed, batch_size=section.batch_size,
                torch_threads=section.torch_threads, iou_thr=section.iou_thr, score_thr=section.score_thr,
                splits={inputs.fit.label: (inputs.fit.gt_uri, inputs.fit.units),
                        inputs.eval.label: (inputs.eval.gt_uri, inputs.eval.units)})
    t0 = time.perf_counter()
    # 1. map: every slice predicted and matched (on Ray model actors, or here)
    if ray:
        from cvray.calibrate.distributed import run_slices_on_ray

        results, failed = run_slices_on_ray(slices, workers=section.workers, cpus=section.cpus_per_worker,
                                            gpus=section.gpus_per_worker, max_retries=section.max_retries,
                                            worker_args=args, on_progress=on_progress)
    else:
        w = SliceWorker(**args)
        results, failed = [], []
        for k, s in enumerate(slices, 1):
            results.append(w.run_slice(s))
            if on_progress is not None:
                on_progress(k, len(slices), slice=s.label)
    slices_wall = time.perf_counter() - t0
    issues = [i for r in results for i in r.issues] + failed
    if issues:
        run.write_table("issues", issues_to_table(issues), part="calibrate")
    by = {r.slice: r for r in results}
    fit = by.get(slices[0])
    if fit is None:
        raise RuntimeError(f"the fit slice ({inputs.fit.label}) failed: {failed[0]['message'] if failed else '?'}")
    m = fit.matched
    if len(m) == 0 or m.tp.all() or not m.tp.any():
        raise InputError(f"{inputs.fit.label}: {len(m)} detections, {int(m.tp.sum())} TPs at IoU {section.iou_thr}: "
                         "a calibrator needs both TPs and FPs on the fit split")
    # 2. fit every calibrator on the fit split only
    cals = {meth: fit_calibrator(meth, m.scores, m.tp, labels=m.labels if section.per_class else None,
                                 min_per_class=section.min_per_class) for meth in section.methods}
    bins = dict(ece_bins=section.ece_bins, dece_bins=section.dece_bins, laece_bins=section.laece_bins)
    # 3. score every slice before and after, write one part per slice
    values: dict[str, dict[str, dict[str, float | None]]] = {}
    diagrams: dict[str, str] = {}
    for s in slices:
        res = by.get(s)
        if res is None:
            continue
        rows, brows = [], []
        for meth in (UNCALIBRATED, *section.methods):
            mm = res.matched if meth == UNCALIBRATED else res.matched.with_scores(
                cals[meth](res.matched.scores, res.matched.labels))
            rep = calibration_report(mm, **bins)
            r1, r2 = _rows(inputs, res, meth, "" if meth == UNCALIBRATED else inputs.fit.label, rep)
            rows += r1
            brows += r2
            values.setdefault(s.label if s.role == "eval" else f"fit:{s.label}", {})[meth] = {
                k: (None if not np.isfinite(v.value) else round(float(v.value), 6)) for k, v in rep.items()}
            want = section.diagrams == "all" or (section.diagrams == "clean" and s.corruption == CLEAN
                                                  and s.role == "eval")
            if want:
                try:
                    diagrams.update(_diagrams(run, s, meth, rep, inputs.class_names))
                except Exception as exc:  # a diagram never costs the stage's results
                    log.warning("reliability diagram %s %s not written: %s", s.label, meth, exc)
        run.write_table("calibration", _table(rows, CALIBRATION_SCHEMA), part=s.name)
        run.write_table("calibration_bins", _table(brows, CALIBRATION_BINS_SCHEMA), part=s.name)
    diagrams = _upload(run, diagrams)
    # 4. save the calibrators (the chosen one beside the model as calibrator.json)
    clean_eval = values.get(slices[1].label, {})
    fit_info = {"split": inputs.fit.label, "annotations": inputs.fit.gt_uri, "images": len(inputs.fit.units),
                "image_ids": inputs.fit.image_ids, "image_ids_sha": ids_fingerprint(inputs.fit.image_ids),
                "detections": len(m), "tp": int(m.tp.sum())}
    model_info = {"name": inputs.model_name, "source": inputs.model_source, "spec": inputs.spec["model"],
                  "weights": inputs.model.weights}
    saved = {}
    for meth, cal in cals.items():
        rec = calibrator_record(cal, method=meth, iou_thr=section.iou_thr, score_thr=section.score_thr,
                                model=model_info, category_ids=inputs.category_ids, fit=fit_info,
                                postprocess=inputs.predict.postprocess.model_dump(mode="json"),
                                metrics={"eval_split": inputs.eval.label, **clean_eval.get(meth, {}),
                                         "before": clean_eval.get(UNCALIBRATED, {})})
        saved[meth] = run.write_artifact(f"calibration/calibrators/{meth}.json",
                                         json.dumps(rec, indent=1).encode())
        if meth == section.saved_method:
            storage.write_json(run.path(CALIBRATOR_FILE), rec)
    eval_ids = set(inputs.eval.image_ids)
    policy_summary = None
    if section.policy.enabled:  # 5. the act / observe / abstain policy: chosen on fit, scored on every slice
        from cvray.calibrate.policy_report import run_policy

        saved_rec = json.loads(json.dumps(storage.read_json(run.path(CALIBRATOR_FILE))))
        policy_summary = run_policy(run, section, inputs, slices, by, cal=cals[section.saved_method],
                                    calibrator_rec=saved_rec, fit_info=fit_info, model_info=model_info)
    summary: dict[str, Any] = {
        "model": inputs.model_name, "fit_split": inputs.fit.label, "eval_split": inputs.eval.label,
        "split_note": inputs.split_note, "fit_images": len(inputs.fit.units), "eval_images": len(inputs.eval.units),
        "fit_eval_shared_images": len(eval_ids & set(inputs.fit.image_ids)) if inputs.fit.gt_uri == inputs.eval.gt_uri
        else 0,
        "fit_detections": len(m), "fit_tp": int(m.tp.sum()), "iou_thr": section.iou_thr,
        "score_thr": section.score_thr, "bins": {"ece": section.ece_bins, "dece": section.dece_bins,
                                                  "laece": section.laece_bins},
        "methods": list(section.methods), "per_class": section.per_class,
        "calibrators": {meth: cal.to_dict() if meth != "isotonic" or section.per_class
                        else {"kind": "isotonic", "points": len(cal.x)} for meth, cal in cals.items()},
        "saved": {"method": section.saved_method, "uri": run.path(CALIBRATOR_FILE)},
        "corruptions": inputs.corruptions, "severities": inputs.severities if inputs.corruptions else [],
        "seed": inputs.seed, "slices": len(slices), "slices_failed": len(failed),
        "failed_images": sum(r.failed_images for r in results),
        "slices_wall_s": round(slices_wall, 2),
        "eval": {k: v for k, v in values.items() if not k.startswith("fit:")},
        "diagrams": diagrams,
    }
    if policy_summary is not None:
        summary["policy"] = policy_summary
    run.summary.update(summary)
    return summary
