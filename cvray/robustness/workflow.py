"""``run_robustness``: the robustness stage's entry point -- a model and a COCO split in, one row
per (corruption, severity) cell plus the clean one in the ``robustness`` table, P / mPC / rPC
for boxes and masks in the summary, severity curves and a heat map in the artifacts.

Example::

    from cvray.config import load_config
    from cvray.runs import run_context
    from cvray.robustness.workflow import prepare_robustness, run_robustness

    cfg = load_config(None, ["robustness.corruptions=gaussian_noise,fog", "robustness.severities=1-3"])
    inputs = prepare_robustness(cfg.robustness, cfg.predict, model="cvray-runs/<train run>",
                                data="./synth/coco", seed=cfg.seed)
    with run_context("robustness", cfg, ray=True) as run:
        summary = run_robustness(run, cfg.robustness, inputs, ray=True)
    summary["bbox_AP"]["mPC"]
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from cvray.io import storage
from cvray.robustness.config import RobustnessConfig
from cvray.robustness.records import CLEAN, Cell, cell_part
from cvray.runs.errors import InputError

__all__ = ["RobustnessInputs", "prepare_robustness", "run_robustness"]

log = logging.getLogger(__name__)

INPUTS_FILE = "robustness_inputs.json"  # what the suite was started with, for --resume


@dataclass(frozen=True)
class RobustnessInputs:
    """The resolved suite: the model (a ``ModelConfig``) and its name in the table, the split's
    annotations and units of work, the corruptions and severities, the corruption seed."""

    model: Any
    model_name: str
    model_source: str
    gt_uri: str
    category_ids: list[int]
    corruptions: list[str]
    severities: list[int]
    seed: int
    predict: Any = field(repr=False)  # the predict section (geometry, postprocess)
    units: list[dict] = field(default_factory=list, repr=False)
    spec: dict = field(default_factory=dict, repr=False)  # model / data / split as given
    # --data MOT_DIR: tracking under corruption
    mode: str = "detection"  # "detection" (COCO split) | "tracking" (MOTChallenge sequences)
    sequences: list[str] = field(default_factory=list)
    tiers: list[str] = field(default_factory=list)  # compression tier names, baselines included
    detectors: list[str] = field(default_factory=list)
    track: Any = field(default=None, repr=False)  # the track section (the tracker's settings)

    def cells(self) -> list:
        if self.mode == "tracking":
            from cvray.robustness.tracking import TrackCell

            return [TrackCell(self.model_name, d, c, s) for d in self.detectors
                    for c, s in [(CLEAN, 0), *((c, s) for c in self.corruptions for s in self.severities),
                                 *((t, 0) for t in self.tiers)]]
        return [Cell(self.model_name, CLEAN, 0)] + [Cell(self.model_name, c, s) for c in self.corruptions
                                                     for s in self.severities]


def _annotations(data: str, split: str) -> str:
    if data.lower().endswith(".json"):
        return data
    return storage.join(data, "annotations", f"instances_{split}.json")


def _model_name(model: str) -> str:
    base = model.rstrip("/").rsplit("/", 1)[-1]
    return base[: -len(".pt")] if base.endswith(".pt") else base


def prepare_robustness(section: RobustnessConfig, predict: Any, *, model: str, data: str, split: str = "val",
                       seed: int = 0) -> RobustnessInputs:
    """Resolve the corruptions (unknown names fail naming them), the model and the images."""
    from cvray.data.coco import DatasetError, load_coco
    from cvray.predict.model_spec import ModelSpecError, require_num_classes, resolve_model
    from cvray.predict.sources import list_units
    from cvray.robustness.corruptions import resolve_corruptions

    try:
        corruptions = resolve_corruptions(list(section.corruptions))
    except ValueError as exc:
        raise InputError(f"robustness.corruptions: {exc}") from None
    if not storage.is_s3(data):
        data = os.path.abspath(data)
    if _is_mot(data, split):
        return _prepare_tracking(section, predict, model=model, data=data, seed=seed, corruptions=corruptions)
    if section.compression:
        raise InputError(f"robustness.compression: {data} is a COCO split; compression tiers are for "
                         "sequences (--data MOT_DIR)")
    ann = _annotations(data, split)
    if not storage.exists(ann):
        raise InputError(f"{data}: no {split} split ({ann} is missing); --data takes a COCO root or its JSON")
    try:
        gt = load_coco(ann)
    except DatasetError as exc:
        raise InputError(f"{ann}: {exc}") from None
    if not gt.get("images"):
        raise InputError(f"{ann}: no images")
    cats = sorted(int(c["id"]) for c in gt["categories"])
    try:
        model_cfg, source = resolve_model(model, predict.model, len(cats))
    except ModelSpecError as exc:
        raise InputError(str(exc)) from None
    require_num_classes(model_cfg, model)
    units = sorted(list_units(ann), key=lambda u: int(u["image_id"]))
    if section.max_images:
        units = units[: section.max_images]
    return RobustnessInputs(model=model_cfg, model_name=_model_name(model), model_source=source, gt_uri=ann,
                            category_ids=cats, corruptions=corruptions, severities=list(section.severities),
                            seed=int(section.seed if section.seed is not None else seed), predict=predict,
                            units=units, spec={"model": model, "data": data, "split": split})


def _is_mot(data: str, split: str) -> bool:
    """A folder of MOTChallenge sequences (``<SEQ>/gt/gt.txt``) and no COCO split."""
    if data.lower().endswith(".json") or storage.exists(_annotations(data, split)):
        return False
    from cvray.track.io import find_sequences

    try:
        return any(u.endswith("gt/gt.txt") for u in find_sequences(data, "gt").values())
    except (FileNotFoundError, ValueError):
        return False


def _prepare_tracking(section: RobustnessConfig, predict: Any, *, model: str, data: str, seed: int,
                      corruptions: list[str]) -> RobustnessInputs:
    from cvray.predict.workflow import resolve_model_and_categories
    from cvray.robustness.compression import baseline_tier, parse_tiers
    from cvray.track.io import find_sequences

    seqs = sorted(find_sequences(data, "gt"))
    tiers = parse_tiers(section.compression) if section.compression else []
    for codec in dict.fromkeys(t.codec for t in tiers):  # CRF 0 first: 4:2:0 alone, not the codec
        if baseline_tier(codec) not in tiers:
            tiers.insert(0, baseline_tier(codec))
    model_cfg, source, cats = resolve_model_and_categories(model, predict.model)
    cats = cats or list(range(1, int(model_cfg.num_classes) + 1))
    return RobustnessInputs(model=model_cfg, model_name=_model_name(model), model_source=source, gt_uri=data,
                            category_ids=cats, corruptions=corruptions, severities=list(section.severities),
                            seed=int(section.seed if section.seed is not None else seed), predict=predict,
                            spec={"model": model, "data": data, "split": "sequences"}, mode="tracking",
                            sequences=seqs, tiers=[t.name for t in sorted(tiers, key=lambda t: (t.codec, t.crf))],
                            detectors=list(dict.fromkeys(section.detectors)))


def _done(run, cells: list) -> set[tuple]:
    """Cells whose part is already written (a resumed suite skips them)."""
    from cvray.robustness.records import track_cell_part

    tracking = bool(cells) and hasattr(cells[0], "detector")
    folder = run.path("tables", "tracking_robustness" if tracking else "robustness")
    have = {u.rsplit("/", 1)[-1][: -len(".parquet")] for u in storage.list_files(folder, suffix=".parquet")}
    part = track_cell_part if tracking else cell_part
    return {c.key for c in cells if part(c) in have}


def run_robustness(run, section: RobustnessConfig, inputs: RobustnessInputs, *, ray: bool = True,
                   on_progress: Callable[..., None] | None = None, track: Any = None) -> dict[str, Any]:
    """Evaluate every cell not yet in the run; summarise the whole table. ``track`` (the
    config's ``track`` section) is the tracker of a MOT suite."""
    from cvray.robustness.corruptions import BENCHMARK, EXTRAS, FAMILIES, HOLDOUT
    from cvray.robustness.metrics import robustness_summary

    storage.write_json(run.path(INPUTS_FILE), {**inputs.spec, "seed": inputs.seed,
                                               "robustness": section.model_dump(mode="json"),
                                               "predict": inputs.predict.model_dump(mode="json"),
                                               **({"track": track.model_dump(mode="json")} if track else {})})
    run.update(model={"source": inputs.model_source, "config": inputs.model.model_dump(mode="json")})
    if inputs.mode == "tracking":
        return _run_tracking(run, section, inputs, track, ray=ray, on_progress=on_progress)
    cells = inputs.cells()
    done = _done(run, cells)
    todo = [c for c in cells if c.key not in done]
    masks = inputs.model.arch == "maskrcnn" or inputs.model.backend == "detectron2"
    args = dict(model_config=inputs.model, category_ids=inputs.category_ids, postprocess=inputs.predict.postprocess,
                geometry=inputs.predict.geometry, gt_uri=inputs.gt_uri, units=inputs.units, seed=inputs.seed,
                batch_size=section.batch_size, torch_threads=section.torch_threads, masks=masks)
    import time

    t0 = time.perf_counter()
    if ray:
        from cvray.robustness.distributed import run_cells_on_ray

        _, failed = run_cells_on_ray(run, todo, workers=section.workers, cpus=section.cpus_per_worker,
                                     gpus=section.gpus_per_worker, max_retries=section.max_retries,
                                     worker_args=args, on_progress=on_progress)
    else:
        failed = _run_local(run, todo, args, on_progress)
    cells_wall = time.perf_counter() - t0
    rows = [r for r in run.read_table("robustness").to_pylist()
            if (r["model"], r["corruption"], int(r["severity"])) in {c.key for c in cells}] if todo or done else []
    fam = {k: v for k, v in FAMILIES.items()}
    # over the full benchmark grid: a suite of fewer cells is summarised over what it has and
    # says it is not the benchmark's number (complete: false)
    summary_by_model = robustness_summary(rows, benchmark=BENCHMARK, holdout=HOLDOUT, extras=EXTRAS,
                                          families=fam, severities=(1, 2, 3, 4, 5))
    mine = summary_by_model.get(inputs.model_name, {})
    summary: dict[str, Any] = {
        "model": inputs.model_name, "images": len(inputs.units), "corruptions": len(inputs.corruptions),
        "severities": inputs.severities, "cells": len(cells), "cells_run": len(todo) - len(failed),
        "cells_skipped_done": len(done), "cells_failed": len(failed), "seed": inputs.seed,
        "cells_wall_s": round(cells_wall, 2),  # the workers' start (model load) and the cells run now
        "images_per_s": round(len(inputs.units) * len(todo) / cells_wall, 2) if todo and cells_wall > 0 else None,
        "full_benchmark": all(c in inputs.corruptions for c in BENCHMARK) and inputs.severities == [1, 2, 3, 4, 5],
    }
    for metric, s in mine.items():
        summary[metric] = {k: s[k] for k in ("P", "mPC", "rPC", "complete", "benchmark_cells") if k in s}
        for extra in ("per_family", "per_severity", "holdout", "extras"):
            if extra in s:
                summary[metric][extra] = s[extra]
    try:
        from cvray.robustness.plots import write_plots

        summary["plots"] = write_plots(run, rows, mine)
    except Exception as exc:  # a plot never costs the suite's results
        log.warning("robustness plots not written: %s", exc)
    run.summary.update(summary)
    return summary


def _run_tracking(run, section: RobustnessConfig, inputs: RobustnessInputs, track: Any, *, ray: bool,
                  on_progress) -> dict[str, Any]:
    """The MOT suite: every (detector, condition) cell not yet in ``tracking_robustness``."""
    import time

    from cvray.robustness.metrics import tracking_summary
    from cvray.robustness.tracking import TrackingCellWorker
    from cvray.track.config import TrackConfig

    track = track or TrackConfig()
    cells = inputs.cells()
    done = _done(run, cells)
    todo = [c for c in cells if c.key not in done]
    args = dict(model_config=inputs.model, category_ids=inputs.category_ids, postprocess=inputs.predict.postprocess,
                geometry=inputs.predict.geometry, mot_root=inputs.gt_uri, track_config=track, seed=inputs.seed,
                batch_size=section.batch_size, torch_threads=section.torch_threads, max_frames=section.max_frames,
                preset=section.compression_preset)
    t0 = time.perf_counter()
    if ray:
        from cvray.robustness.distributed import run_cells_on_ray

        _, failed = run_cells_on_ray(run, todo, workers=section.workers, cpus=section.cpus_per_worker,
                                     gpus=section.gpus_per_worker, max_retries=section.max_retries,
                                     worker_args=args, on_progress=on_progress, worker_cls=TrackingCellWorker)
    else:
        failed = _run_local(run, todo, args, on_progress, worker_cls=TrackingCellWorker)
    wall = time.perf_counter() - t0
    keys = {c.key for c in cells}
    rows = [r for r in run.read_table("tracking_robustness").to_pylist()
            if (r["model"], r["detector"], r["condition"], int(r["severity"])) in keys]
    summary: dict[str, Any] = {
        "model": inputs.model_name, "mode": "tracking", "sequences": len(inputs.sequences),
        "corruptions": len(inputs.corruptions), "severities": inputs.severities, "compression": inputs.tiers,
        "detectors": inputs.detectors, "cells": len(cells), "cells_run": len(todo) - len(failed),
        "cells_skipped_done": len(done), "cells_failed": len(failed), "seed": inputs.seed,
        "cells_wall_s": round(wall, 2), "tracking": tracking_summary(rows),
    }
    try:
        from cvray.robustness.plots import write_tracking_plots

        summary["plots"] = write_tracking_plots(run, rows)
    except Exception as exc:  # a plot never costs the suite's results
        log.warning("tracking robustness plots not written: %s", exc)
    run.summary.update(summary)
    return summary


def _run_local(run, cells: list, args: dict, on_progress, worker_cls=None) -> list[dict]:
    """The same cells in this process (tests, and ``--no-ray``)."""
    from cvray.robustness.cells import CellWorker

    w = (worker_cls or CellWorker)(run, **args)
    for k, cell in enumerate(cells, 1):
        w.run_cell(cell)
        if on_progress is not None:
            on_progress(k, len(cells), cell=f"{cell.corruption}/{cell.severity}")
    return []
