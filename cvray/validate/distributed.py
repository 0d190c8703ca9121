"""Ray Data adapter of the validation workflow (thin: the rules live in the pure modules).

read image jobs -> ``map_batches`` (read bytes, image rules, pHash) -> one row per (image, band)
-> ``groupby(band, value)`` -> bucket-local Hamming verification (exact and near
duplicates). The driver only ever holds the annotation index, issue rows
and verified pairs - never the images, never an all-pairs loop.

Example::

    with ray_context():
        res = validate_ray({"train": "s3://b/ann/instances_train.json"}, "s3://b/images")
"""
from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict
from typing import Iterator

import numpy as np

from cvray.runs.issues import Issue
from cvray.validate.config import ValidateConfig
from cvray.validate.leakage import (
    PAIR_SCHEMA,
    HashRecord,
    band_values,
    bucket_pairs,
    pair_issues,
)
from cvray.validate.reference import ValidationResult, annotation_stage, check_image_job, image_jobs

__all__ = ["validate_ray"]

log = logging.getLogger(__name__)

_PAIR_COLS = [f.name for f in PAIR_SCHEMA]


def _check_batch(batch: dict[str, np.ndarray], cfg: dict) -> dict[str, np.ndarray]:
    """Image rules + hash for a batch of jobs; returns small rows only (no pixels)."""
    c = ValidateConfig(**cfg)
    out: dict[str, list] = {k: [] for k in ("key", "split", "image_id", "file", "group", "ok",
                                            "phash", "sha", "width", "height", "format", "mode",
                                            "issues_json")}
    n = len(batch["key"])
    for i in range(n):
        job = {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in batch.items()}
        rep = check_image_job(job, c)
        out["key"].append(int(job["key"]))
        out["split"].append(str(job["split"]))
        out["image_id"].append(int(job["image_id"]))
        out["file"].append(str(job["file_name"]))
        out["group"].append(str(job["group"]))
        out["ok"].append(bool(rep.ok and rep.phash is not None))
        out["phash"].append(int(rep.phash) if rep.phash is not None else 0)
        out["sha"].append(rep.sha)
        out["width"].append(rep.width)
        out["height"].append(rep.height)
        out["format"].append(rep.format)
        out["mode"].append(rep.mode)
        out["issues_json"].append(json.dumps([asdict(x) for x in rep.issues]))
    return {
        "key": np.array(out["key"], dtype=np.int64), "split": np.array(out["split"], dtype=object),
        "image_id": np.array(out["image_id"], dtype=np.int64),
        "file": np.array(out["file"], dtype=object), "group": np.array(out["group"], dtype=object),
        "ok": np.array(out["ok"], dtype=bool), "phash": np.array(out["phash"], dtype=np.int64),
        "sha": np.array(out["sha"], dtype=object), "width": np.array(out["width"], dtype=np.int64),
        "height": np.array(out["height"], dtype=np.int64),
        "format": np.array(out["format"], dtype=object), "mode": np.array(out["mode"], dtype=object),
        "issues_json": np.array(out["issues_json"], dtype=object),
    }


def _records(batch: dict[str, np.ndarray]) -> list[HashRecord]:
    return [HashRecord(key=int(batch["key"][i]), split=str(batch["split"][i]),
                       image_id=int(batch["image_id"][i]), file=str(batch["file"][i]),
                       group=str(batch["group"][i]), phash=int(batch["phash"][i]),
                       sha=str(batch["sha"][i]))
            for i in range(len(batch["key"]))]


def _pairs_batch(pairs: list[dict]) -> dict[str, np.ndarray]:
    cols = {}
    for name in _PAIR_COLS:
        vals = [p[name] for p in pairs]
        if name == "distance":
            cols[name] = np.array(vals, dtype=np.int32)
        elif name.startswith("image_id"):
            cols[name] = np.array(vals, dtype=np.int64)
        elif name == "cross_split":
            cols[name] = np.array(vals, dtype=bool)
        else:
            cols[name] = np.array(vals, dtype=object)
    return cols


def _explode_bands(batch: dict[str, np.ndarray], threshold: int) -> dict[str, np.ndarray]:
    """Step 1 of the bucketing: one row per (image, band) with the band's value."""
    bv = band_values(batch["phash"], threshold)
    n, k = bv.shape
    rep = {name: np.repeat(col, k) for name, col in batch.items()}
    rep["band"] = np.tile(np.arange(k, dtype=np.int64), n)
    rep["value"] = bv.reshape(-1)
    return rep


def _near_group(batch: dict[str, np.ndarray], threshold: int) -> dict[str, np.ndarray]:
    """Steps 3-4: verify the Hamming distance inside one (band, value) bucket."""
    return _pairs_batch(bucket_pairs(int(batch["band"][0]), _records(batch), threshold))


@contextlib.contextmanager
def _sort_shuffle():
    """Run the band groupby with the task-based sort shuffle, restoring the caller's setting.

    Ray's default hash shuffle starts aggregator actors for every execution - a fixed ~10 s on a
    small cluster, measured to dominate validation of 1,000 images - while the bucket rows here
    are tiny (a few int64 each), which the sort shuffle moves cheaply.
    """
    from ray.data.context import DataContext, ShuffleStrategy

    ctx = DataContext.get_current()
    saved = ctx.shuffle_strategy
    ctx.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    try:
        yield
    finally:
        ctx.shuffle_strategy = saved


def cfg_partitions(n_images: int, per_partition: int = 20_000) -> int:
    """Shuffle partitions for the duplicate search: ~``per_partition`` band rows each (Ray's
    default of 200 partitions costs seconds of scheduling on small corpora)."""
    return max(1, n_images * 8 // per_partition + 1)


def validate_ray(annotation_uris, images_root: str, cfg: ValidateConfig | None = None, *,
                 batch_size: int = 64, on_progress=None) -> tuple[ValidationResult, object]:
    """Validation on Ray Data. Returns the result and the materialised per-image dataset
    (columns key, split, image_id, file, group, ok, phash, sha, width, height, format, mode).
    ``on_progress(done, total)`` as checked images come back (their small per-image rows, not
    pixels, are collected on the driver either way)."""
    import ray
    from ray.data.expressions import col

    cfg = cfg or ValidateConfig()
    reports, issues = annotation_stage(annotation_uris, cfg)
    jobs, path_issues = image_jobs(reports, images_root, cfg)
    issues += path_issues
    stats = {"splits": {s: len(r.index.images) for s, r in reports.items()}, "images": len(jobs),
             "annotations": sum(r.index.n_annotations for r in reports.values())}
    if not jobs:
        return ValidationResult(issues=issues, pairs=[], stats={**stats, "images_decoded": 0}), None
    n_blocks = max(1, min(len(jobs) // batch_size + 1, 256))
    checked = ray.data.from_items(jobs, override_num_blocks=n_blocks).map_batches(
        _check_batch, fn_kwargs={"cfg": cfg.model_dump()}, batch_size=batch_size,
        batch_format="numpy")
    if on_progress is None:
        checked = checked.materialize()
    else:  # stream the per-image rows back to count them, then continue from them
        parts, done = [], 0
        for part in checked.iter_batches(batch_size=None, batch_format="pyarrow"):
            parts.append(part)
            done += part.num_rows
            on_progress(done, len(jobs))
        checked = ray.data.from_arrow(parts).materialize()
    for row in checked.filter(expr=col("issues_json") != "[]").select_columns(
            ["issues_json"]).take_all():
        issues.extend(Issue(**d) for d in json.loads(row["issues_json"]))
    decoded = checked.filter(expr=col("ok") == True)  # noqa: E712 - builds an expression
    hashed = decoded.drop_columns(["issues_json", "width", "height", "format", "mode", "ok"])
    n_ok = hashed.count()
    pairs: list[dict] = []
    if n_ok > 1:
        parts = max(1, min(n_blocks, cfg_partitions(n_ok)))
        near = hashed.map_batches(_explode_bands, fn_kwargs={"threshold": cfg.phash_threshold},
                                  batch_format="numpy").groupby(["band", "value"], num_partitions=parts)
        near = near.map_groups(_near_group, fn_kwargs={"threshold": cfg.phash_threshold},
                               batch_format="numpy")
        with _sort_shuffle():
            pairs.extend(near.take_all())
    pairs = [{k: (v.item() if hasattr(v, "item") else v) for k, v in p.items()} for p in pairs]
    pairs.sort(key=lambda p: (p["kind"], p["split_a"], p["file_a"], p["split_b"], p["file_b"]))
    issues += pair_issues(pairs)
    return ValidationResult(issues=issues, pairs=pairs,
                            stats={**stats, "images_decoded": n_ok}), checked


def image_tables(images_ds) -> Iterator:
    """The per-image dataset of :func:`validate_ray` as ``images`` tables, one per block."""
    import pyarrow as pa

    from cvray.validate.tables import IMAGES_SCHEMA

    for batch in images_ds.drop_columns(["issues_json"]).iter_batches(batch_format="pyarrow",
                                                                       batch_size=None):
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        if table.num_rows:
            yield table.select(IMAGES_SCHEMA.names).cast(IMAGES_SCHEMA)
