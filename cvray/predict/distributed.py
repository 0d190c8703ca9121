"""Batch inference on Ray Data: read → decode/preprocess (CPU tasks) → model (actor pool) →
postprocess → predictions Parquet, one part per chunk of inputs.

::

    units ─from_items─▶ flat_map(read_preprocess: read + decode + letterbox)    CPU tasks, no torch
          ─▶ map_batches(Predictor, ActorPoolStrategy(n), batch_size, num_gpus)   model loaded once
          ─▶ driver: rows → Detections / issues, grouped by chunk → run tables

Row accounting: every input image or video frame has a sequence number; chunk k holds sequence
numbers ``[k * chunk_size, (k+1) * chunk_size)``. When all rows of a chunk have arrived, its
predictions are written as ``tables/predictions/part-<k>.parquet`` and its failures as
``tables/issues/predict-<k>.parquet``. Rows are keyed by sequence number, so a task Ray re-runs
after a node loss can never add a row twice, and re-running a chunk rewrites the same part
(idempotent per block). At the end ``predictions + issues == inputs`` is checked.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import numpy as np

from cvray.predict.config import PredictConfig
from cvray.predict.engine import Predictor, rows_to_results
from cvray.predict.postprocess import policy_record
from cvray.predict.records import PREDICTIONS_SCHEMA_VERSION, detections_to_table
from cvray.predict.preprocess import read_preprocess
from cvray.runs.issues import issues_to_table
from cvray.runs.stderr_filter import drop_stderr_lines

__all__ = ["predict_ray", "expected_rows", "RowAccountingError"]

log = logging.getLogger(__name__)


class RowAccountingError(RuntimeError):
    """Rows out != rows in (a lost or duplicated image): never silently accepted."""


def expected_rows(unit: dict[str, Any]) -> int:
    """How many rows :func:`read_unit` yields for a unit (one per image / kept frame)."""
    if unit["kind"] == "image" or unit.get("error"):
        return 1
    return sum(1 for f in range(unit["start"], unit["stop"]) if f % unit["stride"] == 0)


class _RayPredictor(Predictor):
    """Predictor that carries the sequence number through (the Ray-side wrapper)."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = super().__call__(batch)
        out["seq"] = np.asarray(batch["seq"])
        for k in _DRIFT_COLUMNS:  # the read stage's drift features pass through to the driver
            if k in batch:
                out[k] = np.asarray(batch[k])
        return out


_DRIFT_COLUMNS = ("drift_features", "drift_luma")


def predict_ray(units: list[dict[str, Any]], run, *, cfg: PredictConfig,
                model_factory: Callable, category_ids: list[int] | None = None,
                calibrator: dict | None = None, policy: dict | None = None, drift=None,
                on_progress: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
    """Run the pipeline over ``units`` and write the run's predictions/issues tables.

    ``drift``: a :class:`cvray.drift.stream.DriftStream` that receives every predicted frame
    (features from the read tasks + its detections); the caller computes and writes its tables.
    Returns the summary (images, predictions rows, issue rows, detections, images/s, policy).
    """
    import ray

    # 1. number every row; chunk = seq // chunk_size
    total = 0
    for u in units:
        u["seq_base"] = total
        total += expected_rows(u)
    n_chunks = (total + cfg.chunk_size - 1) // cfg.chunk_size
    chunk_need = [min(cfg.chunk_size, total - k * cfg.chunk_size) for k in range(n_chunks)]
    resources = ray.cluster_resources()
    gpus = cfg.num_gpus_per_actor
    if gpus is None:
        gpus = 1.0 if resources.get("GPU", 0) > 0 else 0.0
    actors = cfg.num_actors
    if actors is None:
        actors = (max(1, int(resources.get("GPU", 0) // gpus)) if gpus > 0
                  else max(1, int(resources.get("CPU", 1) // cfg.num_cpus_per_actor)))

    # 2. the dataset: read+decode and preprocess are stateless CPU tasks, the model an actor pool
    ds = ray.data.from_items(units, override_num_blocks=max(1, min(len(units), 4 * n_chunks, 200)))
    # decode is light next to the model: by default it reserves no CPU, so it overlaps with the
    # actors even when they reserve every CPU (else it would wait for the model to finish, or
    # stall), bounded by decode_concurrency; its workers never import torch
    concurrency = cfg.decode_concurrency or max(1, int(resources.get("CPU", 1)))
    ds = ds.flat_map(read_preprocess, fn_kwargs={"geometry": cfg.geometry, "drift": drift is not None},
                     num_cpus=cfg.decode_cpus,
                     compute=ray.data.TaskPoolStrategy(size=concurrency))
    ds = ds.map_batches(
        _RayPredictor,
        fn_constructor_args=(model_factory,),
        fn_constructor_kwargs={"postprocess_cfg": cfg.postprocess, "category_ids": category_ids,
                               "device": "cuda" if gpus > 0 else "cpu", "num_threads": cfg.torch_threads,
                               "calibrator": calibrator, "policy": policy},
        # an elastic pool (1..num_actors): after a node is lost the job goes on with fewer replicas
        # instead of waiting for resources that are gone
        # all replicas start at once (initial_size), not one by one as the queue grows
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors, initial_size=actors),
        batch_size=cfg.batch_size, batch_format="numpy",
        num_cpus=cfg.num_cpus_per_actor, num_gpus=gpus,
    )

    # 3. collect on the driver, write each chunk once it is complete
    seen: set[int] = set()
    pending: dict[int, list[dict]] = {}
    n_pred = n_issue = n_det = duplicates = 0
    t0 = time.perf_counter()
    # the actor pool starts with the first batch: Ray's C++ ERROR line about Ray Data's own
    # constructor refs (cvray/runs/stderr_filter.py) is dropped unless -v
    with drop_stderr_lines():
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for j in range(len(batch["seq"])):
                row = {k: batch[k][j] for k in batch}
                s = int(row["seq"])
                if s in seen:  # a re-executed task after a failure: keep the first copy
                    duplicates += 1
                    continue
                seen.add(s)
                k = s // cfg.chunk_size
                pending.setdefault(k, []).append(row)
                if len(pending[k]) == chunk_need[k]:
                    p, i, d = _write_chunk(run, k, sorted(pending.pop(k), key=lambda r: int(r["seq"])), drift)
                    n_pred, n_issue, n_det = n_pred + p, n_issue + i, n_det + d
            if on_progress:
                dt = time.perf_counter() - t0
                on_progress(len(seen), total, len(seen) / dt if dt > 0 else 0.0)
    wall = time.perf_counter() - t0
    for k in sorted(pending):  # only reached if rows went missing: write what arrived
        p, i, d = _write_chunk(run, k, sorted(pending.pop(k), key=lambda r: int(r["seq"])), drift)
        n_pred, n_issue, n_det = n_pred + p, n_issue + i, n_det + d
    if duplicates:
        log.warning("%d rows were produced twice (re-executed tasks) and kept once", duplicates)
    if n_pred + n_issue != total:
        raise RowAccountingError(f"{total} input images/frames but {n_pred} predictions + {n_issue} issues")
    return {"images": total, "prediction_rows": n_pred, "issue_rows": n_issue, "detections": n_det,
            "chunks": n_chunks, "duplicates_dropped": duplicates, "seconds": round(wall, 3),
            "images_per_s": round(total / wall, 3) if wall > 0 else None,
            "postprocess": policy_record(cfg.postprocess), "geometry": cfg.geometry.model_dump(mode="json"),
            "batch_size": cfg.batch_size, "actors": actors, "gpus_per_actor": gpus,
            "torch_threads": cfg.torch_threads,
            "schema_version": PREDICTIONS_SCHEMA_VERSION}


def _write_chunk(run, k: int, rows: list[dict], drift=None) -> tuple[int, int, int]:
    dets, issues = rows_to_results(rows)
    if drift is not None:  # ok rows and their records are in the same order
        for r, det in zip((r for r in rows if r["status"] == "ok"), dets):
            if "drift_features" in r:
                _add_drift_frame(drift, r, det)
    if dets:
        run.write_table("predictions", detections_to_table(dets), part=f"part-{k:06d}")
    if issues:
        run.write_table("issues", issues_to_table(issues), part=f"predict-{k:06d}")
    return len(dets), len(issues), sum(len(d) for d in dets)


def _add_drift_frame(drift, row: dict, det) -> None:
    from cvray.drift.stream import source_of

    video = det.frame_index is not None
    preds = {"scores": det.scores, "labels": det.labels}
    decisions = getattr(det, "decisions", None)
    if decisions is not None:
        preds["decisions"] = list(decisions)
    drift.add(source_of(det.file_name, video=video), det.frame_index if video else int(row["seq"]),
              det.timestamp_s if video else None, row["drift_features"], row.get("drift_luma"), preds)
