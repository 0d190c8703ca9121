"""Training results written into the run (main worker only): Parquet, PNG, TensorBoard.

Tables (``<run>/tables/<name>/``):

* ``train_curves``   one row per iteration: loss parts, lr, grad_norm, positives, time, images/s
* ``eval_metrics``   one row per evaluation: iteration + COCO stats (``bbox_AP`` ...) or mIoU/Dice
* ``per_class_ap``   per evaluation a part ``iter-<N>``: iteration, iou_type, category, AP, AP50
  (semantic runs: ``per_class_iou`` with IoU and Dice)

Artifacts: ``learning_curves.png`` (loss parts, lr, validation metric, gradient norm); TensorBoard event files
under ``<run>/tensorboard`` (written locally and uploaded when the run lives on S3).
"""
from __future__ import annotations

import io
import logging
import math
import os
import tempfile
from typing import Any

import pyarrow as pa

from cvray.io import storage

__all__ = ["TrainOutputs"]

log = logging.getLogger(__name__)


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    cols = {}
    for k in keys:
        vals = [r.get(k) for r in rows]
        if all(isinstance(v, (int, float)) or v is None for v in vals):
            cols[k] = pa.array([None if v is None else float(v) for v in vals], pa.float64())
            if k == "iteration":
                cols[k] = pa.array([int(v) for v in vals], pa.int64())
        else:
            cols[k] = pa.array([None if v is None else str(v) for v in vals], pa.string())
    return pa.table(cols)


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
        name = "per_class_iou" if metrics.get("mIoU") is not None and "bbox_AP" not in metrics else "per_class_ap"
        self.run.write_table(name, _table([{"iteration": iteration, **r} for r in per_class]),
                             part=f"iter-{iteration:07d}")
        self.run.write_table("eval_metrics", _table(history))
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
        self.run.write_table("train_curves", _table(rows))
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
