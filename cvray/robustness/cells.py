"""One cell of a suite, without Ray: corrupt every image -> predict -> COCO AP (boxes, masks).

The corruption of an image is a pure function of (seed, image id, corruption, severity)
(:func:`cvray.robustness.corruptions.corruption_rng`), so a retried cell sees the very same pixels.
An image the corruption or the model fails on becomes an issue row and is left out of the cell;
the cell goes on.
"""
from __future__ import annotations

import time
from typing import Any

from cvray.evaluate.coco import coco_evaluate
from cvray.predict.config import GeometryConfig
from cvray.predict.engine import Predictor, predict_local
from cvray.predict.records import to_coco_results
from cvray.robustness.records import CLEAN, COCO_STATS, Cell, CellResult, cell_part, cell_rows_table
from cvray.runs.issues import issues_to_table

__all__ = ["CellWorker", "run_cell"]


def _stats(gt: dict, results: list[dict], iou_type: str) -> dict[str, float | None]:
    if not results:  # nothing detected: AP 0 by definition (not "not measured")
        return {f"{iou_type}_{s}": 0.0 for s in COCO_STATS}
    st = coco_evaluate(gt, results, iou_type).stats
    return {f"{iou_type}_{s}": (float(st[s]) if st.get(s) is not None and st[s] == st[s] and st[s] >= 0 else None)
            for s in COCO_STATS}


def run_cell(cell: Cell, *, units: list[dict], predictor: Predictor, geometry: GeometryConfig, gt: dict,
             seed: int, batch_size: int = 4, masks: bool = True) -> CellResult:
    """The cell's row (and its issue rows) for ``units`` (cvray.predict.sources units of ``gt``)."""
    from cvray.robustness.corruptions import corrupt, corruption_rng, family

    t0 = time.perf_counter()

    def transform(row: dict[str, Any]) -> dict[str, Any]:
        if cell.corruption == CLEAN:
            return row
        try:
            rng = corruption_rng(seed, int(row["image_id"]), cell.corruption, cell.severity)
            return {**row, "image": corrupt(row["image"], cell.corruption, cell.severity, rng)}
        except Exception as exc:  # one image never ends the cell: it becomes an issue row
            return {**row, "ok": False, "rule": "robustness.corruption_failed",
                    "error": f"{row['file_name']}: {cell.corruption} severity {cell.severity}: "
                             f"{type(exc).__name__}: {exc}"}

    dets, issues = predict_local(units, predictor, geometry, batch_size=batch_size, transform=transform)
    results = to_coco_results(dets)
    ids = {d.image_id for d in dets}
    gt_cell = {**gt, "images": [im for im in gt["images"] if im["id"] in ids]}
    gt_cell["annotations"] = [a for a in gt["annotations"] if a["image_id"] in ids]
    stats: dict[str, float | None] = {}
    if gt_cell["images"]:
        stats.update(_stats(gt_cell, [{k: v for k, v in r.items() if k != "segmentation"} for r in results], "bbox"))
        # mask AP when the model has masks; a cell with no detection at all has mask AP 0 as well
        with_masks = [r for r in results if "segmentation" in r]
        if masks and (with_masks or not results):
            stats.update(_stats(gt_cell, with_masks, "segm"))
    fam = "clean" if cell.corruption == CLEAN else family(cell.corruption)
    return CellResult(model=cell.model, corruption=cell.corruption, family=fam, severity=cell.severity,
                      seed=seed, images=len(ids), failed_images=len(units) - len(ids),
                      detections=len(results), wall_s=time.perf_counter() - t0, stats=stats,
                      issues=[i.__dict__ if hasattr(i, "__dict__") else dict(i) for i in issues])


class CellWorker:
    """One model replica; ``run(cell)`` evaluates a whole cell and writes its row."""

    def __init__(self, run, model_config, category_ids, postprocess, geometry, gt_uri: str, units: list[dict],
                 seed: int, batch_size: int, torch_threads: int | None, masks: bool):
        from cvray.data.coco import load_coco
        from cvray.predict.engine import ModelFactory, Predictor

        self.run, self.geometry, self.units, self.seed = run, geometry, units, seed
        self.batch_size, self.masks = batch_size, masks
        self.gt = load_coco(gt_uri)
        self.predictor = Predictor(ModelFactory(model_config), postprocess_cfg=postprocess,
                                   category_ids=category_ids, num_threads=torch_threads)

    def run_cell(self, cell: Cell) -> dict[str, Any]:
        res = run_cell(cell, units=self.units, predictor=self.predictor, geometry=self.geometry, gt=self.gt,
                       seed=self.seed, batch_size=self.batch_size, masks=self.masks)
        part = cell_part(cell)
        if res.issues:
            self.run.write_table("issues", issues_to_table(res.issues), part=f"robustness-{part}")
        self.run.write_table("robustness", cell_rows_table([res.row()]), part=part)
        return res.row()
