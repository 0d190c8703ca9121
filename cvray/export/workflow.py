"""``run_export``: the export stage's entry point -- a trained torchvision detector in, its ONNX
graph (and, with ``--int8``, an INT8 QDQ graph) out, with the evidence that it is the same model:
detection-level parity against eager torch on the same images, eager vs onnxruntime latency, and
for INT8 its AP / small-object recall / rPC (and tracking ID switch) deltas on the corruption suite.

Artifacts (``artifacts/export/``): ``model.onnx``, ``model.int8.onnx``, ``model.json`` (the
torchvision model config and category ids). Tables: ``export_parity``, ``int8_deltas``,
``int8_tracking_deltas``. The run itself is a model: ``--model RUN`` (FP32) or ``--model
RUN:int8`` runs it in every stage through the ``onnx`` backend (``cvray/predict/model_spec.py``).

Example::

    from cvray.config import load_config
    from cvray.runs import run_context
    from cvray.export.workflow import prepare_export, run_export

    cfg = load_config(None, ["export.corruptions=fog,contrast", "export.severities=1,3,5"])
    inputs = prepare_export(cfg.export, cfg.predict, model="cvray-runs/<train run>", int8=True,
                            calibration="./synth/coco/annotations/instances_train.json",
                            suite="./synth/coco", seed=cfg.seed)
    with run_context("export onnx", cfg, dataset=inputs.dataset) as run:
        summary = run_export(run, cfg.export, inputs, ray=False, predict=cfg.predict)
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from cvray.export.config import ExportConfig
from cvray.io import storage
from cvray.runs.errors import InputError

__all__ = ["ARTIFACTS", "ExportInputs", "export_all", "prepare_export", "run_export"]

log = logging.getLogger(__name__)

#: artifact names under ``artifacts/export/`` (cvray/predict/model_spec.py resolves them)
ARTIFACTS = {"fp32": "model.onnx", "int8": "model.int8.onnx", "config": "model.json"}


@dataclass(frozen=True)
class ExportInputs:
    model: Any                       # the torchvision ModelConfig to export
    model_name: str
    model_source: str
    category_ids: list[int] | None
    input: str                       # the parity / latency images
    parity_units: list[dict] = field(repr=False, default_factory=list)
    int8: bool = False
    calibration: str | None = None
    calibration_units: list[dict] = field(repr=False, default_factory=list)
    suite: str | None = None         # the suite's COCO annotations
    suite_units: list[dict] = field(repr=False, default_factory=list)
    suite_mot: str | None = None
    corruptions: list[str] = field(default_factory=list)
    seed: int = 0
    dataset: dict = field(default_factory=dict, repr=False)  # for the manifest (the categories' source)


def _run_split(model: str, key: str) -> str | None:
    man = storage.join(model, "manifest.json")
    if not storage.exists(man):
        return None
    return (storage.read_json(man).get("dataset") or {}).get(key)


def _units(uri: str, what: str) -> list[dict]:
    from cvray.predict.sources import InputError as SourceError
    from cvray.predict.sources import list_units

    if not storage.exists(uri):
        raise InputError(f"{what} {uri}: no such file or folder")
    try:
        units = list_units(uri)
    except (SourceError, ValueError) as exc:
        raise InputError(f"{what} {uri}: {exc}") from None
    if not units:
        raise InputError(f"{what} {uri}: no images")
    return sorted(units, key=lambda u: (int(u.get("image_id", 0)), str(u.get("uri", ""))))


def _suite_annotations(data: str) -> str:
    if data.lower().endswith(".json"):
        return data
    return storage.join(data, "annotations", "instances_val.json")


def prepare_export(section: ExportConfig, predict: Any, *, model: str, input: str | None = None, int8: bool = False,
                   calibration: str | None = None, suite: str | None = None, suite_mot: str | None = None,
                   categories: str | None = None, seed: int = 0) -> ExportInputs:
    """Resolve ``--model`` (as ``cvray predict`` does), the parity images (``--input``, default the
    training run's val split), the calibration set and the suite; every unusable input is an
    :class:`InputError` naming it."""
    from cvray.export.onnx_export import UnsupportedModel, check_exportable
    from cvray.predict.workflow import resolve_model_and_categories
    from cvray.robustness.corruptions import resolve_corruptions

    if not int8 and (calibration or suite or suite_mot):
        given = "--calibration-data" if calibration else ("--suite" if suite else "--suite-mot")
        raise InputError(f"{given} is for the INT8 model: add --int8")
    if int8 and not calibration:
        raise InputError("--int8 needs --calibration-data COCO_JSON|IMAGES (the images its activation ranges "
                         "are calibrated on)")
    for flag, uri in (("--input", input), ("--calibration-data", calibration), ("--suite", suite),
                      ("--suite-mot", suite_mot), ("--categories", categories)):
        if uri and not storage.exists(uri):
            raise InputError(f"{flag} {uri}: no such file or folder")
    input = input or _run_split(model, "val") or _run_split(model, "train")
    model_cfg, source, category_ids = resolve_model_and_categories(model, predict.model, categories=categories,
                                                                   input_uri=input)  # a bad --model first
    if not input:
        raise InputError(f"--model {model} is not a training run with a dataset: give --input IMAGES|COCO_JSON "
                         "(the parity images)")
    try:
        check_exportable(model_cfg)
    except UnsupportedModel as exc:
        raise InputError(f"--model {model}: {exc}") from None
    try:
        corruptions = resolve_corruptions(list(section.corruptions)) if (suite or suite_mot) else []
        if int8:
            resolve_corruptions(list(section.calibration_corruptions))
    except ValueError as exc:
        raise InputError(f"export: {exc}") from None
    parity_units = _units(input, "--input")
    calibration_units = _units(calibration, "--calibration-data") if int8 else []
    suite_ann, suite_units = None, []
    if suite:
        from cvray.data.coco import DatasetError, load_coco

        suite_ann = _suite_annotations(suite)
        if not storage.exists(suite_ann):
            raise InputError(f"--suite {suite}: no val split ({suite_ann} is missing); --suite takes a COCO root "
                             "or its JSON")
        try:
            if not load_coco(suite_ann).get("images"):
                raise InputError(f"--suite {suite_ann}: no images")
        except DatasetError as exc:
            raise InputError(f"--suite {suite_ann}: {exc}") from None
        suite_units = _units(suite_ann, "--suite")
        if section.max_images:
            suite_units = suite_units[: section.max_images]
    if suite_mot:
        from cvray.track.io import find_sequences

        try:
            seqs = find_sequences(suite_mot, "gt")
        except (FileNotFoundError, ValueError) as exc:
            raise InputError(f"--suite-mot {suite_mot}: {exc}") from None
        if not any(u.endswith("gt/gt.txt") for u in seqs.values()):
            raise InputError(f"--suite-mot {suite_mot}: no MOTChallenge sequences (<SEQ>/gt/gt.txt)")
    name = model.rstrip("/").rsplit("/", 1)[-1]
    dataset = {k: v for k, v in (("train", _run_split(model, "train")), ("parity", input),
                                 ("calibration", calibration), ("suite", suite_ann), ("suite_mot", suite_mot))
               if v}
    return ExportInputs(model=model_cfg, model_name=name[:-3] if name.endswith(".pt") else name, model_source=source,
                        category_ids=category_ids, input=input, parity_units=parity_units, int8=int8,
                        calibration=calibration, calibration_units=calibration_units, suite=suite_ann,
                        suite_units=suite_units, suite_mot=suite_mot, corruptions=corruptions,
                        seed=int(section.seed if section.seed is not None else seed), dataset=dataset)


def read_images(units: list[dict], n: int, geometry, issues: list | None = None
                ) -> tuple[list[int], list[np.ndarray]]:
    """(image ids, letterboxed uint8 HxWx3) of the first ``n`` readable images of ``units``; an
    unreadable one is passed over and, with ``issues``, appended there as an issue row."""
    from cvray.predict.preprocess import preprocess_row
    from cvray.predict.sources import read_unit
    from cvray.runs.issues import issue

    ids, images = [], []
    for u in units:
        for row in read_unit(u):
            if not row.get("ok"):
                if issues is not None:
                    issues.append(issue("export", str(row.get("rule") or "image.unreadable"),
                                        str(row.get("error") or "unreadable"),
                                        file=str(row.get("uri") or row.get("file_name")),
                                        image_id=int(row["image_id"])))
                continue
            images.append(preprocess_row(row, geometry)["image"])
            ids.append(int(row["image_id"]))
            if len(images) >= n:
                return ids, images
    return ids, images


def _tensor(im: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float().div_(255)


def _run_model(model, images: list[np.ndarray], warmup: int) -> tuple[list[dict], list[float]]:
    """Outputs (numpy) and per-image latencies (s) of ``model([image])`` on each image."""
    import torch

    with torch.inference_mode():
        for _ in range(warmup):
            model([_tensor(images[0])])
        outs, times = [], []
        for im in images:
            x = _tensor(im)
            t0 = time.perf_counter()
            o = model([x])[0]
            times.append(time.perf_counter() - t0)
            outs.append({k: v.detach().cpu().numpy() for k, v in o.items()})
    return outs, times


def _pct(times: list[float], p: int) -> float:
    return float(np.percentile(np.asarray(times) * 1e3, p)) if times else float("nan")


def _parity_row(variant: str, *, inputs: ExportInputs, section: ExportConfig, refs, ref_t, outs, out_t,
                images: list[np.ndarray], provider: str, nbytes: int) -> dict[str, Any]:
    from cvray.export.parity import ParityTolerance, parity_stats, verdict

    st = parity_stats(refs, outs)
    if variant == "fp32":
        tol = ParityTolerance(section.tol_match_rate, section.tol_box_px, section.tol_score, section.tol_mask_iou)
    else:
        tol = ParityTolerance(section.int8_tol_match_rate, section.int8_tol_box_px, section.int8_tol_score,
                              section.int8_tol_mask_iou, on="mean")
    ok, why = verdict(st, tol)
    e50, o50 = _pct(ref_t, 50), _pct(out_t, 50)
    return {"model": inputs.model_name, "variant": variant, "arch": inputs.model.arch, "opset": section.opset,
            "images": st["images"], "input_height": int(images[0].shape[0]), "input_width": int(images[0].shape[1]),
            "eager_detections": st["reference_detections"], "onnx_detections": st["candidate_detections"],
            "matched": st["matched"], "match_rate": st["match_rate"], "max_box_px": st["max_box_px"],
            "mean_box_px": st["mean_box_px"], "max_score_delta": st["max_score"], "mean_score_delta": st["mean_score"],
            "mask_iou_min": st["mask_iou_min"], "mask_iou_mean": st["mask_iou_mean"],
            "tolerance_on": tol.on, "tol_match_rate": tol.match_rate, "tol_box_px": tol.box_px, "tol_score": tol.score,
            "tol_mask_iou": tol.mask_iou if inputs.model.arch == "maskrcnn" else None,
            "passed": ok, "failures": "; ".join(why) or None,
            "eager_p50_ms": e50, "eager_p95_ms": _pct(ref_t, 95), "onnx_p50_ms": o50, "onnx_p95_ms": _pct(out_t, 95),
            "speedup_p50": e50 / o50 if o50 > 0 else None, "threads": section.threads, "provider": provider,
            "model_bytes": nbytes}


def export_all(run, *, inputs: ExportInputs, section: ExportConfig, geometry, postprocess, track=None,
               on_progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Export, check, quantize and compare in this process (the Ray module runs it in its worker);
    writes the artifacts into ``run`` and returns the table rows and what was done."""
    import onnx
    import onnxruntime
    import torch

    from cvray.export.onnx_export import UnsupportedModel, export_onnx
    from cvray.models import build_model
    from cvray.models.onnx_backend import OnnxDetector

    torch.set_num_threads(section.threads)
    steps = 3 + (2 if inputs.int8 else 0) + (1 if inputs.suite else 0) + (1 if inputs.suite_mot else 0)
    done = 0

    def step(**info):
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, steps, **info)

    skipped: list = []  # unreadable images: rows of the issues table (returned), the export goes on
    ids, images = read_images(inputs.parity_units, section.parity_images, geometry, skipped)
    if not images:
        raise InputError(f"--input {inputs.input}: no readable image")
    eager = build_model(inputs.model).eval()
    t0 = time.perf_counter()
    try:
        fp32 = export_onnx(eager, inputs.model, _tensor(images[0]), opset=section.opset,
                           metadata={"cvray.category_ids": inputs.category_ids, "cvray.variant": "fp32"})
    except UnsupportedModel as exc:  # one line, exit 2: the model, not the machine
        raise InputError(f"--model {inputs.model_source}: {exc}") from None
    export_s = time.perf_counter() - t0
    uris = {"fp32": run.write_artifact(f"export/{ARTIFACTS['fp32']}", fp32)}
    step(stage="exported")
    refs, ref_t = _run_model(eager, images, section.warmup)
    onnx_fp32 = OnnxDetector(uris["fp32"], task=inputs.model.task, threads=section.threads).eval()
    outs, out_t = _run_model(onnx_fp32, images, section.warmup)
    provider = onnx_fp32.providers[0]
    rows = [_parity_row("fp32", inputs=inputs, section=section, refs=refs, ref_t=ref_t, outs=outs, out_t=out_t,
                        images=images, provider=provider, nbytes=len(fp32))]
    step(stage="parity fp32", passed=rows[0]["passed"])
    quant: dict[str, Any] = {}
    if inputs.int8:
        from cvray.export.quantize import DEFAULT_EXCLUDE, calibration_images, quantize_int8

        cal_ids, cal = read_images(inputs.calibration_units, section.calibration_images, geometry, skipped)
        if not cal:
            raise InputError(f"--calibration-data {inputs.calibration}: no readable image")
        conditions = list(calibration_images(cal, corruptions=list(section.calibration_corruptions),
                                             severities=list(section.calibration_severities), seed=inputs.seed,
                                             image_ids=cal_ids))
        t0 = time.perf_counter()
        int8, quant = quantize_int8(fp32, [im for _, im in conditions],
                                    exclude=tuple(DEFAULT_EXCLUDE) + tuple(section.int8_exclude),
                                    method=section.calibration_method, per_channel=section.per_channel)
        quant.update(quantize_s=round(time.perf_counter() - t0, 2),
                     calibration_conditions=sorted(set(c for c, _ in conditions)),
                     calibration_clean_images=len(cal))
        uris["int8"] = run.write_artifact(f"export/{ARTIFACTS['int8']}", int8)
        step(stage="quantized")
        onnx_int8 = OnnxDetector(uris["int8"], task=inputs.model.task, threads=section.threads).eval()
        o8, t8 = _run_model(onnx_int8, images, section.warmup)
        rows.append(_parity_row("int8", inputs=inputs, section=section, refs=refs, ref_t=ref_t, outs=o8, out_t=t8,
                                images=images, provider=provider, nbytes=len(int8)))
        step(stage="parity int8", passed=rows[-1]["passed"])
    del eager
    config = {"model": inputs.model.model_dump(mode="json"), "category_ids": inputs.category_ids,
              "source": inputs.model_source, "variants": sorted(k for k in uris)}
    run.write_artifact(f"export/{ARTIFACTS['config']}", json.dumps(config, indent=2).encode())
    result: dict[str, Any] = {"parity": rows, "artifacts": uris, "quantization": quant, "export_s": round(export_s, 2),
                              "parity_image_ids": ids, "issues": skipped,
                              "versions": {"torch": torch.__version__, "onnx": onnx.__version__,
                                           "onnxruntime": onnxruntime.__version__},
                              "input_size": [int(images[0].shape[0]), int(images[0].shape[1])]}
    if inputs.suite or inputs.suite_mot:
        from cvray.predict.engine import ModelFactory, Predictor

        onnx_cfg = {v: inputs.model.model_copy(update={"backend": "onnx", "weights": uris[v]}) for v in ("fp32", "int8")}
        predictors = {v: Predictor(ModelFactory(c), postprocess_cfg=postprocess, category_ids=inputs.category_ids,
                                   device="cpu", num_threads=section.threads) for v, c in onnx_cfg.items()}
    if inputs.suite:
        from cvray.data.coco import load_coco
        from cvray.export.suite import delta_rows, detection_suite

        cells = detection_suite(predictors, units=inputs.suite_units, gt=load_coco(inputs.suite), geometry=geometry,
                                corruptions=inputs.corruptions, severities=list(section.severities),
                                seed=inputs.seed, batch_size=section.batch_size,
                                masks=inputs.model.arch == "maskrcnn",
                                on_progress=(lambda k, n, **i: on_progress(done, steps, cells=f"{k}/{n}", **i)) if on_progress else None)
        result["deltas"], result["suite"] = delta_rows(cells, model=inputs.model_name, seed=inputs.seed)
        step(stage="suite")
    if inputs.suite_mot:
        from cvray.export.suite import tracking_deltas, tracking_suite
        from cvray.track.config import TrackConfig

        cells = tracking_suite(predictors, mot_root=inputs.suite_mot, geometry=geometry,
                               track_config=track or TrackConfig(), corruptions=inputs.corruptions,
                               severities=list(section.severities), seed=inputs.seed, batch_size=section.batch_size,
                               max_frames=section.max_frames,
                               on_progress=(lambda k, n, **i: on_progress(done, steps, cells=f"{k}/{n}", **i)) if on_progress else None)
        result["tracking_deltas"], result["tracking"] = tracking_deltas(cells, model=inputs.model_name,
                                                                        seed=inputs.seed)
        step(stage="tracking suite")
    return result


def run_export(run, section: ExportConfig, inputs: ExportInputs, *, ray: bool = False, predict: Any = None,
               track: Any = None, on_progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Export + parity (+ INT8 + suite deltas); write the tables; the summary has the verdicts.
    ``predict`` is the config's predict section (geometry, post-processing), ``track`` the
    tracker of ``--suite-mot``."""
    from cvray.export.records import (INT8_DELTAS_SCHEMA, INT8_TRACKING_DELTAS_SCHEMA, parity_table,
                                      rows_table)
    from cvray.predict.config import PredictConfig

    predict = predict or PredictConfig()
    job = dict(inputs=inputs, section=section, geometry=predict.geometry, postprocess=predict.postprocess, track=track)
    t0 = time.perf_counter()
    if ray:
        from cvray.export.distributed import export_on_ray

        res = export_on_ray(run, job, on_progress=on_progress)
    else:
        res = export_all(run, **job, on_progress=on_progress)
    run.add_issues(res.get("issues") or [])
    run.write_table("export_parity", parity_table(res["parity"]))
    if "deltas" in res:
        run.write_table("int8_deltas", rows_table(res["deltas"], INT8_DELTAS_SCHEMA))
    if "tracking_deltas" in res:
        run.write_table("int8_tracking_deltas", rows_table(res["tracking_deltas"], INT8_TRACKING_DELTAS_SCHEMA))
    run.update(export={"opset": section.opset, "exporter": "torch.onnx.export(dynamo=False)",
                       "input": {"name": "image", "layout": "3xHxW float32 [0,1]", "batch": 1,
                                 "dynamic_axes": ["height", "width"],
                                 "traced_size": res["input_size"], "geometry": predict.geometry.model_dump(mode="json")},
                       "versions": res["versions"], "quantization": res["quantization"] or None,
                       "artifacts": res["artifacts"], "model_source": inputs.model_source})
    parity = {r["variant"]: {k: r[k] for k in ("passed", "match_rate", "max_box_px", "max_score_delta", "mask_iou_min",
                                              "eager_p50_ms", "onnx_p50_ms", "speedup_p50", "failures")}
              for r in res["parity"]}
    summary: dict[str, Any] = {
        "model": inputs.model_name, "arch": inputs.model.arch, "opset": section.opset,
        "onnx": res["artifacts"]["fp32"], **({"onnx_int8": res["artifacts"]["int8"]} if "int8" in res["artifacts"] else {}),
        "parity_images": res["parity"][0]["images"], "input_size": res["input_size"], "export_s": res["export_s"],
        "passed": all(r["passed"] for r in res["parity"]), "parity": parity,
        "issues": len(res.get("issues") or []),
        "versions": res["versions"], "wall_s": round(time.perf_counter() - t0, 2),
    }
    if res["quantization"]:
        q = res["quantization"]
        summary["int8"] = {k: q.get(k) for k in ("quantized_nodes", "calibration_images", "pre_process", "quantize_s")}
        summary["int8"]["float_nodes"] = len(q.get("float_nodes") or [])
    if "suite" in res:
        summary["suite"] = {"corruptions": len(inputs.corruptions), "severities": list(section.severities),
                            "images": len(inputs.suite_units), **res["suite"]}
    if "tracking" in res:
        summary["tracking"] = res["tracking"]
    run.summary.update(summary)
    return summary
