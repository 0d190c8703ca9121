"""Data workflows as short functions: read (Ray Data) → map → write to the run."""
from __future__ import annotations

import logging
from typing import Any

from cvray.data.coco import dataset_fingerprint
from cvray.data.distributed import read_coco
from cvray.data.ingest import issue_rows
from cvray.data.summary import aggregate, image_stats
from cvray.io import storage
from cvray.runs import Run

__all__ = ["coco_layout", "ingest_coco"]

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


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
