"""``cvray validate`` as one short function: validate (Ray Data or local) -> baselines -> write.

Tables written to the run: ``issues`` (the runs issues schema), ``leakage_pairs``
(:data:`cvray.validate.leakage.PAIR_SCHEMA`), ``images`` (per-image format/mode/size/pHash/sha,
Ray mode) and ``baselines`` (bbox COCO stats of the sanity baselines).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cvray.io import storage
from cvray.runs import Run
from cvray.validate.baselines import run_baselines
from cvray.validate.config import ValidateConfig
from cvray.validate.leakage import pairs_to_table
from cvray.validate.pipeline import ValidationResult, annotation_splits, validate_local
from cvray.validate.tables import baselines_to_table

__all__ = ["ValidateInputs", "run_validate"]

log = logging.getLogger(__name__)


def _baselines(annotation_uris: dict[str, str], cfg: ValidateConfig) -> tuple[list[dict], list]:
    """Baselines fitted on ``train`` and scored on every other split (when both parse)."""
    import json

    if "train" not in annotation_uris:
        return [], []
    try:
        docs = {s: json.loads(storage.read_bytes(u)) for s, u in annotation_uris.items()}
    except (ValueError, storage.StorageError) as exc:
        log.info("baselines skipped: %s", exc)
        return [], []
    rows, issues = [], []
    for split, doc in docs.items():
        if split == "train":
            continue
        try:
            r, i = run_baselines(docs["train"], doc, cfg, split=split)
        except Exception as exc:  # a split the evaluator rejects is already a schema issue
            log.info("baselines on %s skipped: %s", split, exc)
            continue
        rows += r
        issues += i
    return rows, issues


@dataclass(frozen=True)
class ValidateInputs:
    annotations: tuple[str, ...]  # COCO files; instances_<split>.json names the split
    images: str                   # images root (file_name is relative to it)
    baselines: bool = True        # score the sanity baselines


def run_validate(run: Run | None, section: ValidateConfig, inputs: ValidateInputs, *, ray: bool = True
                 ) -> tuple[ValidationResult, dict[str, Any]]:
    """Validate (Ray Data when ``ray``, else in process), score the baselines and (with a run)
    write every table; return the result and the summary. ``section`` is ``validation``."""
    cfg, images_root, use_ray, baselines = section, inputs.images, ray, inputs.baselines
    uris = annotation_splits(list(inputs.annotations))
    images_ds = None
    if use_ray:
        from cvray.validate.distributed import validate_ray

        result, images_ds = validate_ray(uris, images_root, cfg)
    else:
        result = validate_local(uris, images_root, cfg)
    rows, b_issues = _baselines(uris, cfg) if baselines else ([], [])
    result.issues.extend(b_issues)
    summary = result.summary(cfg)
    summary["baselines"] = {f"{r['baseline']}@{r['split']}": round(r["AP"], 4) for r in rows}
    if run is not None:
        run.add_issues(result.issues)
        run.write_table("leakage_pairs", pairs_to_table(result.pairs))
        if rows:
            run.write_table("baselines", baselines_to_table(rows))
        if images_ds is not None:
            from cvray.validate.distributed import image_tables

            for k, table in enumerate(image_tables(images_ds)):
                run.write_table("images", table, part=f"part-{k:05d}")
        run.flush_issues()
        run.summary.update(summary)
    return result, summary
