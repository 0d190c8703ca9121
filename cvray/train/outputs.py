"""Training results written into the run (main worker only): Parquet, PNG, TensorBoard.

Tables (``<run>/tables/<name>/``), each with its declared schema here (``cvray.schema_version`` 1):

* ``train_curves``   one row per iteration: :data:`TRAIN_CURVES_SCHEMA` plus one float64 column
  per loss part of the model (named as the model names it, after ``loss``): :func:`train_curves_schema`
* ``eval_metrics``   one row per evaluation: :data:`EVAL_METRICS_SCHEMA` plus one float64 column
  per metric (``bbox_<stat>`` / ``segm_<stat>`` COCO stats, or ``mIoU``, ``mDice``,
  ``pixel_acc``): :func:`eval_metrics_schema`
* ``per_class_ap``   per evaluation a part ``iter-<N>``: iteration, iou_type, category_id, name,
  AP, AP50 (semantic runs: ``per_class_iou`` with IoU and Dice)
* ``worker_seeds``   Ray runs: rank, seed, base_seed (:func:`worker_seeds_table`)

Artifacts: ``learning_curves.png`` (loss parts, lr, validation metric, gradient norm); TensorBoard event files
under ``<run>/tensorboard`` (written locally and uploaded when the run lives on S3).
"""
from __future__ import annotations

import io
import logging
import math
import os
import re
import tempfile
from typing import Any, Iterable, Sequence

import pyarrow as pa

from cvray.io import storage
from cvray.runs.tables import declare

__all__ = ["CURVE_COLUMNS", "EVAL_METRICS_SCHEMA", "PER_CLASS_AP_SCHEMA", "PER_CLASS_IOU_SCHEMA",
           "TRAIN_CURVES_SCHEMA", "TrainOutputs", "WORKER_SEEDS_SCHEMA", "eval_metrics_schema",
           "curves_table", "eval_table", "train_curves_schema", "worker_seeds_table"]

log = logging.getLogger(__name__)

_ITERATION = pa.field("iteration", pa.int64(), nullable=False)

# -- train_curves: the columns every run has; the loss parts follow the model ---------------------------
CURVE_COLUMNS = ("loss", "lr", "grad_norm", "images", "positives", "data_time", "time", "images_per_s",
                 "skipped")
# v2: "skipped" (1.0: the step guard refused a non-finite step; weights and schedule untouched)
TRAIN_CURVES_SCHEMA = declare("train_curves", [_ITERATION, *(pa.field(c, pa.float64()) for c in CURVE_COLUMNS)],
                              version=2)


def train_curves_schema(loss_parts: Iterable[str] = ()) -> pa.Schema:
    """``train_curves`` of a model whose loss dict has the keys ``loss_parts`` (in the model's
    order: torchvision R-CNNs ``loss_classifier`` ... ``loss_rpn_box_reg``, RetinaNet/FCOS
    ``classification``, ``bbox_regression`` (, ``bbox_ctrness``), semantic ``loss_sem_seg``
    (, ``loss_aux``)): :data:`TRAIN_CURVES_SCHEMA` with one float64 column per part after ``loss``.

    >>> train_curves_schema(["loss_mask"]).names[:3]
    ['iteration', 'loss', 'loss_mask']
    """
    parts = list(dict.fromkeys(loss_parts))
    bad = [p for p in parts if p in CURVE_COLUMNS or p == "iteration"]
    if bad:
        raise ValueError(f"train_curves: loss parts may not be named like a fixed column: {bad}")
    base = list(TRAIN_CURVES_SCHEMA)
    return declare("train_curves", [*base[:2], *(pa.field(p, pa.float64()) for p in parts), *base[2:]], version=2)


# -- eval_metrics: iteration + the evaluation's metrics + its time ----------------------------------------
EVAL_METRICS_SCHEMA = declare("eval_metrics", [_ITERATION, pa.field("eval_time", pa.float64())])
METRIC_NAME = re.compile(r"^(?:(?:bbox|segm)_[A-Za-z0-9]+|mIoU|mDice|pixel_acc)$")


def eval_metrics_schema(metrics: Iterable[str] = ()) -> pa.Schema:
    """``eval_metrics`` of an evaluation reporting ``metrics``: :data:`EVAL_METRICS_SCHEMA` with
    one float64 column per metric (``bbox_<stat>``/``segm_<stat>`` COCO stats, or ``mIoU``,
    ``mDice``, ``pixel_acc``) between ``iteration`` and ``eval_time``."""
    names = [m for m in dict.fromkeys(metrics) if m not in ("iteration", "eval_time")]
    bad = [m for m in names if not METRIC_NAME.match(m)]
    if bad:
        raise ValueError(f"eval_metrics: {bad} are not declared metric columns (bbox_<stat>, segm_<stat>, "
                         f"mIoU, mDice, pixel_acc; cvray.train.outputs.eval_metrics_schema)")
    base = list(EVAL_METRICS_SCHEMA)
    return declare("eval_metrics", [base[0], *(pa.field(m, pa.float64()) for m in names), base[1]])


# -- per-class results of each evaluation -------------------------------------------------------------------
_CLASS = [_ITERATION, pa.field("iou_type", pa.string()), pa.field("category_id", pa.int64()),
          pa.field("name", pa.string())]
PER_CLASS_AP_SCHEMA = declare("per_class_ap", [*_CLASS, pa.field("AP", pa.float64()), pa.field("AP50", pa.float64())])
PER_CLASS_IOU_SCHEMA = declare("per_class_iou", [*_CLASS, pa.field("IoU", pa.float64()),
                                                 pa.field("Dice", pa.float64())])

# -- worker_seeds (Ray runs) -----------------------------------------------------------------------------------
WORKER_SEEDS_SCHEMA = declare("worker_seeds", [pa.field("rank", pa.int32(), nullable=False),
                                               pa.field("seed", pa.int64(), nullable=False),
                                               pa.field("base_seed", pa.int64(), nullable=False)])


def worker_seeds_table(base_seed: int, seeds: Sequence[int]) -> pa.Table:
    """``worker_seeds``: the seed of each rank (``seeds[rank]``) drawn from ``base_seed``."""
    return pa.table({"rank": pa.array(range(len(seeds)), pa.int32()),
                     "seed": pa.array([int(s) for s in seeds], pa.int64()),
                     "base_seed": pa.array([int(base_seed)] * len(seeds), pa.int64())}, schema=WORKER_SEEDS_SCHEMA)


def _keys(rows: list[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    return keys


def _table(schema: pa.Schema, rows: list[dict[str, Any]]) -> pa.Table:
    """``rows`` as a table of the declared ``schema``; a column it does not declare is an error."""
    extra = [k for k in _keys(rows) if k not in schema.names]
    if extra:
        name = (schema.metadata or {}).get(b"cvray.table", b"?").decode()
        raise ValueError(f"table {name!r}: columns {extra} are not in its declared schema (cvray.train.outputs)")
    floats = {f.name for f in schema if pa.types.is_floating(f.type)}
    data = [{k: (None if r.get(k) is None else float(r[k])) if k in floats else r.get(k) for k in schema.names}
            for r in rows]
    return pa.Table.from_pylist(data, schema=schema)


def table_name(schema: pa.Schema) -> str:
    return schema.metadata[b"cvray.table"].decode()


def curves_table(rows: list[dict[str, Any]]) -> pa.Table:
    """``train_curves`` of ``rows`` (one dict per iteration, as MetricsHook keeps them): every key
    besides the fixed columns is a loss part of the model."""
    fixed = set(TRAIN_CURVES_SCHEMA.names)
    return _table(train_curves_schema(k for k in _keys(rows) if k not in fixed), rows)


def eval_table(history: list[dict[str, Any]]) -> pa.Table:
    """``eval_metrics`` of ``history`` (one dict per evaluation: iteration, metrics, eval_time)."""
    return _table(eval_metrics_schema(_keys(history)), history)


class TrainOutputs:
    """Writes a training run's tables and plots; a no-op wherever ``run`` is None."""

    def __init__(self, run, *, tensorboard: bool = True, metric: str = "segm_AP"):
        self.run, self.metric = run, metric
        self._tb = None
        self._tb_dir = None
        if run is not None and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            uri = run.path("tensorboard")
            if storage.is_s3(uri):
                self._tb_dir = tempfile.mkdtemp(prefix="cvray-tb-")
                self._tb_uri = uri
                logdir = self._tb_dir
            else:
                logdir = storage.resolve(uri)[1]
                os.makedirs(logdir, exist_ok=True)
            self._tb = SummaryWriter(log_dir=logdir)

    # -- per step / per eval ----------------------------------------------------------------
    def scalars(self, row: dict[str, float], iteration: int) -> None:
        if self._tb is None:
            return
        for k, v in row.items():
            if k != "iteration" and isinstance(v, float) and math.isfinite(v):
                group = "loss" if k.startswith("loss") else "train"
                self._tb.add_scalar(f"{group}/{k}", v, iteration)

    def eval(self, iteration: int, metrics: dict[str, float], per_class: list[dict],
             history: list[dict], curves: list[dict]) -> None:
        if self.run is None:
            return
        semantic = metrics.get("mIoU") is not None and "bbox_AP" not in metrics
        schema = PER_CLASS_IOU_SCHEMA if semantic else PER_CLASS_AP_SCHEMA
        self.run.write_table(table_name(schema), _table(schema, [{"iteration": iteration, **r} for r in per_class]),
                             part=f"iter-{iteration:07d}")
        self.run.write_table("eval_metrics", eval_table(history))
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, float) and math.isfinite(v):
                    self._tb.add_scalar(f"val/{k}", v, iteration)
            self._tb.flush()
        self.curves(curves, history)

    def curves(self, rows: list[dict], history: list[dict] | None = None) -> None:
        """Write ``train_curves`` and ``learning_curves.png`` (called at evals and at the end)."""
        if self.run is None or not rows:
            return
        self.run.write_table("train_curves", curves_table(rows))
        if history is None:
            try:
                history = self.run.read_table("eval_metrics").to_pylist()
            except Exception:  # no evaluation yet
                history = []
        self.run.write_artifact("learning_curves.png", self._plot(rows, history))
        self.flush()

    def _plot(self, rows: list[dict], history: list[dict]) -> bytes:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 4, figsize=(18, 3.8))
        its = [r["iteration"] for r in rows]
        for k in sorted({k for r in rows for k in r if k.startswith("loss")}):
            ax[0].plot(its, [r.get(k) for r in rows], label=k, lw=1)
        ax[0].set_yscale("log")
        ax[0].set_title("training loss")
        ax[0].legend(fontsize=7)
        ax[1].plot(its, [r["lr"] for r in rows])
        ax[1].set_title("learning rate")
        keys = [k for k in ("segm_AP", "bbox_AP", "segm_AP50", "bbox_AP50", "mIoU", "mDice")
                if history and k in history[0]]
        for k in keys:
            ax[2].plot([h["iteration"] for h in history], [h[k] for h in history], "o-", label=k)
        ax[2].set_title("validation")
        if keys:
            ax[2].legend(fontsize=7)
        if any("grad_norm" in r for r in rows):
            ax[3].plot(its, [r.get("grad_norm") for r in rows], lw=1, label="grad norm (before clipping)")
            ax[3].set_yscale("log")
            ax[3].legend(fontsize=7)
        ax[3].set_title("gradient norm")
        for a in ax:
            a.set_xlabel("iteration")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        return buf.getvalue()

    def flush(self) -> None:
        if self._tb is None:
            return
        self._tb.flush()
        if self._tb_dir is not None:
            storage.upload_tree(self._tb_dir, self._tb_uri)

    def close(self) -> None:
        if self._tb is not None:
            self.flush()
            self._tb.close()
            self._tb = None
