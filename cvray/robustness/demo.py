"""Stage of ``cvray demo`` after training: a small robustness suite on the model just trained --
four benchmark corruptions (one per family) x severities 1 and 3, plus the clean split, on the
synthetic val split, as cells on Ray (the same code as ``cvray robustness``). A user who sets any
``robustness.*`` key keeps their own section instead."""
from __future__ import annotations

from typing import Any

from cvray.io import storage

__all__ = ["DEMO_ROBUSTNESS", "demo_robustness"]

DEMO_ROBUSTNESS: dict[str, Any] = {"corruptions": ["gaussian_noise", "motion_blur", "fog", "jpeg_compression"],
                                   "severities": [1, 3], "workers": 2}


def demo_robustness(run: Any, cfg: Any, synth: dict) -> dict[str, Any]:
    from cvray.data.coco import load_coco
    from cvray.predict.options import GeometryConfig, PostprocessConfig
    from cvray.predict.sources import list_units
    from cvray.robustness.config import RobustnessConfig
    from cvray.robustness.corruptions import resolve_corruptions
    from cvray.robustness.workflow import RobustnessInputs, run_robustness
    from cvray.train.data import CategoryMap
    from cvray.train.demo import demo_train_config

    ckpt = run.summary.get("best_checkpoint") or run.summary.get("checkpoint")
    if not ckpt:
        return {"skipped": "no trained checkpoint in this run"}
    ann = storage.join(synth["coco_root"], "annotations", "instances_val.json")
    if not storage.exists(ann) or not load_coco(ann)["images"]:
        return {"skipped": f"no val images ({ann})"}
    user = cfg.robustness.model_dump(mode="json", exclude_unset=True)
    section = RobustnessConfig.model_validate({**DEMO_ROBUSTNESS, **user})
    cats = CategoryMap.from_coco(load_coco(storage.join(synth["coco_root"], "annotations", "instances_train.json")))
    mcfg = demo_train_config(cfg).model.model_copy(update={"num_classes": cats.num_classes, "weights": ckpt,
                                                           "strict_weights": True})
    predict = cfg.predict.model_copy(update={
        "geometry": GeometryConfig(mode="letterbox", size=(mcfg.min_size, mcfg.min_size)),
        "postprocess": PostprocessConfig(score_threshold=0.05)})
    units = sorted(list_units(ann), key=lambda u: int(u["image_id"]))[: section.max_images or None]
    inputs = RobustnessInputs(model=mcfg, model_name="demo-model", model_source=f"this run ({ckpt})", gt_uri=ann,
                              category_ids=list(cats.ids), corruptions=resolve_corruptions(section.corruptions),
                              severities=list(section.severities), seed=int(cfg.seed), predict=predict, units=units,
                              spec={"model": ckpt, "data": synth["coco_root"], "split": "val"})
    s = run_robustness(run, section, inputs, ray=True)
    out = {k: s[k] for k in ("images", "corruptions", "severities", "cells", "cells_failed") if k in s}
    for metric in ("bbox_AP", "segm_AP"):
        if metric in s:
            out[metric] = {k: s[metric].get(k) for k in ("P", "mPC", "rPC")}
    rows = run.read_table("robustness").to_pylist()
    clean = next((r for r in rows if r["corruption"] == "clean"), {})
    out["clean_bbox_AP50"] = clean.get("bbox_AP50")
    out["per_cell_bbox_AP50"] = {f"{r['corruption']}/{r['severity']}": r["bbox_AP50"] for r in rows
                                 if r["corruption"] != "clean"}
    out["note"] = "4 of the 15 benchmark corruptions x severities 1, 3: not the benchmark's mPC (cvray robustness runs it)"
    out["plots"] = s.get("plots")
    return out
