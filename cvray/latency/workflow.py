"""``run_latency``: the latency stage's entry point -- a model and its input in, a budget sheet
out: every stage's p50 / p95 / p99 and FPS per configuration (input size x batch size x threads
on the worker's device) and per scene (the typical images, the most crowded, the largest), the
warm-up apart, the ``latency`` table, a PNG sheet and which stage breaks the budget.

Example::

    from cvray.config import load_config
    from cvray.runs import run_context
    from cvray.latency.workflow import prepare_latency, run_latency

    cfg = load_config(None, ["latency.batch_sizes=1,4", "latency.budget_ms=50"])
    inputs = prepare_latency(cfg.latency, cfg.predict, model="cvray-runs/<train run>",
                             input="./synth/coco/annotations/instances_val.json")
    with run_context("latency", cfg, ray=True) as run:
        summary = run_latency(run, cfg.latency, inputs, ray=True, track=cfg.track)
    summary["verdicts"]
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from cvray.io import storage
from cvray.latency.config import LatencyConfig
from cvray.runs.errors import InputError

__all__ = ["LatencyInputs", "prepare_latency", "run_latency"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatencyInputs:
    model: Any
    model_name: str
    model_source: str
    category_ids: list[int] | None
    units: list[dict] = field(repr=False)
    gt: dict | None = field(default=None, repr=False)  # the input's annotations (worst-case scenes)
    input: str = ""


def prepare_latency(section: LatencyConfig, predict: Any, *, model: str, input: str,
                    categories: str | None = None) -> LatencyInputs:
    """Resolve ``--model`` as ``cvray predict`` does and the input's images (and annotations)."""
    from cvray.data.coco import load_coco
    from cvray.predict.sources import list_units
    from cvray.predict.workflow import resolve_model_and_categories

    if not storage.exists(input):
        raise InputError(f"{input}: no such file or folder")
    model_cfg, source, category_ids = resolve_model_and_categories(model, predict.model, categories=categories,
                                                                   input_uri=input)
    units = list_units(input)
    if not units:
        raise InputError(f"{input}: no images or videos to time")
    gt = load_coco(input) if input.lower().endswith(".json") else None
    name = model.rstrip("/").rsplit("/", 1)[-1]
    return LatencyInputs(model=model_cfg, model_name=name[:-3] if name.endswith(".pt") else name,
                         model_source=source, category_ids=category_ids, units=units, gt=gt, input=input)


def settings(section: LatencyConfig, model_cfg: Any, device: str) -> list:
    from cvray.latency.measure import LatencySetting

    sizes = section.input_sizes or [int(getattr(model_cfg, "min_size", 0) or 640)]
    return [LatencySetting(s, b, t, device) for s, b, t in itertools.product(sizes, section.batch_sizes,
                                                                               section.threads)]


def scenes(section: LatencyConfig, inputs: LatencyInputs) -> dict[str, list[dict]]:
    from cvray.latency.measure import worst_case_units

    out = {"typical": inputs.units[: section.max_images] if section.max_images else inputs.units}
    if section.worst_case:
        out.update(worst_case_units(inputs.units, inputs.gt, section.worst_case))
    return out


def run_latency(run, section: LatencyConfig, inputs: LatencyInputs, *, ray: bool = True, track: Any = None,
                postprocess: Any = None, on_progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Time every (setting, scene); write the table and the sheet; the summary says what breaks."""
    from cvray.latency.records import latency_table
    from cvray.latency.timing import budget_verdict
    from cvray.predict.config import PostprocessConfig

    job = dict(model_config=inputs.model, category_ids=inputs.category_ids,
               postprocess=postprocess or PostprocessConfig(), track_config=track if section.track else None,
               scenes=scenes(section, inputs), section=section)
    if ray:
        from cvray.latency.distributed import measure_on_ray

        device, results = measure_on_ray(job, on_progress=on_progress)
    else:
        device, results = measure_all(**job, on_progress=on_progress)
    rows, verdicts, load = [], [], []
    for (setting, scene), res in results:
        base = {"model": inputs.model_name, "setting": setting.name, "device": setting.device,
                "input_size": setting.input_size, "batch_size": setting.batch_size, "threads": setting.threads,
                "scene": scene, "detections_per_image": res["detections"]}
        rows += [{**base, "phase": "timed", **r} for r in res["rows"]]
        rows += [{**base, "phase": "warmup", **r} for r in res["warmup"]]
        verdicts.append({"setting": setting.name, "scene": scene, "images": res["images"],
                         **budget_verdict(res["rows"], section.budget_ms)})
        load.append(res["model_load_s"])
    run.write_table("latency", latency_table(rows))
    summary: dict[str, Any] = {
        "model": inputs.model_name, "device": device, "budget_ms": section.budget_ms,
        "settings": len({v["setting"] for v in verdicts}), "scenes": sorted({v["scene"] for v in verdicts}),
        "met": all(v["met"] for v in verdicts), "verdicts": verdicts,
        "model_load_s": round(max(load), 3) if load else None,
        "breaks": sorted({v["breaks"] for v in verdicts if v["breaks"]}),
    }
    try:
        from cvray.latency.plots import sheet_png

        data = sheet_png(rows, section.budget_ms)
        if data:
            summary["sheet"] = run.write_artifact("latency/sheet.png", data)
    except Exception as exc:  # a plot never costs the measurements
        log.warning("latency sheet not drawn: %s", exc)
    run.summary.update(summary)
    return summary


def measure_all(*, model_config, category_ids, postprocess, track_config, scenes: dict[str, list[dict]],
                section: LatencyConfig, on_progress=None) -> tuple[str, list]:
    """Every (setting, scene) in this process (the Ray module runs this inside its worker)."""
    import torch

    from cvray.latency.measure import measure_setting

    device = section.device if section.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    todo = [(s, name, units) for s in settings(section, model_config, device) for name, units in scenes.items()]
    out = []
    for k, (setting, name, units) in enumerate(todo, 1):
        res = measure_setting(setting, units, model_config=model_config, category_ids=category_ids,
                              postprocess=postprocess, track_config=track_config, warmup=section.warmup,
                              repeat=section.repeat)
        out.append(((setting, name), res))
        if on_progress is not None:
            on_progress(k, len(todo), setting=setting.name, scene=name)
    return device, out
