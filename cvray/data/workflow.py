"""The data stage's workflows: ``run_synth`` and ``run_ingest`` (read with Ray Data → map → write).

Example::

    with run_context("data ingest", cfg, ray=True) as run:
        summary = run_ingest(run, cfg.data, IngestInputs(dataset="./synth/coco"))
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from cvray.data.coco import dataset_fingerprint
from cvray.data.distributed import read_coco
from cvray.data.ingest import issue_rows
from cvray.data.summary import aggregate, image_stats
from cvray.io import storage
from cvray.runs import Run

__all__ = ["IngestInputs", "SynthInputs", "coco_layout", "ingest_coco", "run_ingest", "run_synth"]

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SynthInputs:
    out: str            # where the dataset goes (local folder or s3://)
    images: int
    videos: int
    seed: int


@dataclass(frozen=True)
class IngestInputs:
    dataset: str        # a COCO root: annotations/instances_<split>.json + images/


def run_synth(run: Run, section: Any, inputs: SynthInputs) -> dict[str, Any]:
    """Generate the synthetic dataset (``section``: the ``synth`` config) and record its layout."""
    from cvray.data.synth import synthesize

    if inputs.images < 1 or inputs.videos < 0:
        raise ValueError("images must be >= 1 and videos >= 0")
    result = synthesize(inputs.out, inputs.images, inputs.videos, inputs.seed, section)
    run.summary.update(result)
    return result


def run_ingest(run: Run, section: Any, inputs: IngestInputs, *, ray: bool = True) -> dict[str, Any]:
    """Ingest every split of ``inputs.dataset`` (``section``: the ``data`` config, unused so far:
    the dataset comes from the inputs). Ray Data only: ``ray=False`` is refused."""
    if not ray:
        raise ValueError("ingest reads through Ray Data; there is no in-process path")
    # a local path is made absolute here, on the driver: Ray Data tasks run in other folders
    dataset = inputs.dataset if storage.is_s3(inputs.dataset) else os.path.abspath(inputs.dataset)
    result = ingest_coco(run, coco_layout(dataset), storage.join(dataset, "images"))
    run.summary.update(result)
    return result


def coco_layout(root: str) -> dict[str, str]:
    """Annotation URIs of the splits present under a cvray COCO root (``annotations/instances_<split>.json``)."""
    found = {s: storage.join(root, "annotations", f"instances_{s}.json") for s in SPLITS}
    found = {s: u for s, u in found.items() if storage.exists(u)}
    if not found:
        raise FileNotFoundError(f"{root}: no annotations/instances_<split>.json found")
    return found


def ingest_coco(run: Run, annotations: dict[str, str], images_root: str) -> dict[str, Any]:
    """Ingest every split through Ray Data; write ``dataset_summary``, ``class_counts`` and issues."""
    run.update(dataset=dataset_fingerprint(annotations))
    stats: list[dict] = []
    for split, uri in annotations.items():
        ds = read_coco(uri, images_root, split=split)
        # The image arrays stay in the cluster; only small stats rows and failures come back.
        rows = ds.map(lambda r: {**image_stats(r), "uri": r["uri"], "file_name": r["file_name"],
                                 "rule": r["rule"], "error": r["error"]}).take_all()
        run.add_issues(issue_rows(rows))
        stats.extend(rows)
    summary, classes = aggregate(stats)
    run.write_table("dataset_summary", summary)
    run.write_table("class_counts", classes)
    run.flush_issues()
    return {
        "images": sum(summary.column("images").to_pylist()),
        "images_failed": sum(summary.column("images_failed").to_pylist()),
        "annotations": sum(summary.column("annotations").to_pylist()),
        "splits": {r["split"]: r["images"] for r in summary.to_pylist()},
        "fingerprint": run.manifest["dataset"]["combined"][:16],
    }
