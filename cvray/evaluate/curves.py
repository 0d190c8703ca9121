"""Precision-recall curves per class and precision / recall / F1 versus confidence threshold.

* PR curves come from the COCO precision array (101 recall points, envelope-interpolated), so the
  area under each plotted curve is exactly the AP in the per-class table.
* P/R vs confidence uses the COCO-exact matches of :mod:`cvray.evaluate.matching` at one IoU:
  at threshold t, precision = TP(score>=t) / N(score>=t), recall = TP(score>=t) / #GT.

Rows flatten into Parquet; ``plot_*`` return PNG bytes (matplotlib, Agg backend).
"""
from __future__ import annotations

import io

import numpy as np

from cvray.evaluate.coco import CocoEvalResult
from cvray.evaluate.matching import ClassDets

__all__ = ["pr_curve_rows", "confidence_curve_rows", "plot_pr_curve", "plot_confidence_curves", "plot_confusion"]


def pr_curve_rows(result: CocoEvalResult, iou: float | None = 0.5) -> list[dict]:
    """One row per (class, recall point): precision at that recall (area 'all', max dets 100).

    ``iou=None`` averages over the ten COCO thresholds (the curve behind AP@[.5:.95]).
    """
    t = slice(None) if iou is None else [int(np.argmin(np.abs(result.iou_thresholds - iou)))]
    rows = []
    for k, c in enumerate(result.category_ids):
        p = result.precision[t, :, k, 0, -1]
        if (p < 0).all():
            continue
        p = np.where(p < 0, np.nan, p).mean(0)
        for r, v in zip(result.recall_thresholds, p):
            rows.append({"category_id": c, "iou": -1.0 if iou is None else float(iou),
                         "recall": float(r), "precision": float(v)})
    return rows


def confidence_curve_rows(classes: dict[int, ClassDets], thresholds: np.ndarray) -> list[dict]:
    """Rows (category_id or -1 for all classes pooled, threshold, precision, recall, f1)."""
    rows = []
    pooled_s = np.concatenate([v.scores for v in classes.values()] or [np.zeros(0)])
    pooled_t = np.concatenate([v.tp for v in classes.values()] or [np.zeros(0, bool)])
    pooled_n = sum(v.npos for v in classes.values())
    items = list(classes.items()) + [(-1, ClassDets(pooled_s, pooled_t, pooled_n))]
    for c, v in items:
        if v.npos == 0 and not len(v.scores):
            continue
        for t in thresholds:
            sel = v.scores >= t
            n = int(sel.sum())
            tp = int(v.tp[sel].sum())
            p = tp / n if n else float("nan")
            r = tp / v.npos if v.npos else float("nan")
            f1 = 2 * p * r / (p + r) if n and v.npos and (p + r) > 0 else 0.0 if n and v.npos else float("nan")
            rows.append({"category_id": int(c), "threshold": float(t), "precision": p, "recall": r,
                         "f1": f1, "detections": n, "tp": tp})
    return rows


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _figure(w=4.2, h=3.2):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def plot_pr_curve(rows: list[dict], title: str) -> bytes:
    """PNG of one class's PR curve(s) (rows of one category, any IoU values)."""
    fig, ax = _figure()
    for iou in sorted({r["iou"] for r in rows}):
        rs = [r for r in rows if r["iou"] == iou]
        label = "IoU .50:.95" if iou < 0 else f"IoU {iou:.2f}"
        ap = float(np.nanmean([r["precision"] for r in rs]))
        ax.plot([r["recall"] for r in rs], [r["precision"] for r in rs], label=f"{label} (AP {ap:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)


def plot_confidence_curves(rows: list[dict], title: str) -> bytes:
    """PNG with precision, recall and F1 against the confidence threshold."""
    fig, ax = _figure()
    t = [r["threshold"] for r in rows]
    for key in ("precision", "recall", "f1"):
        ax.plot(t, [r[key] for r in rows], label=key)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence threshold")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    return _png(fig)


def plot_confusion(matrix: np.ndarray, labels: list[str], title: str = "confusion matrix") -> bytes:
    """PNG heat map of a confusion matrix (rows true, columns predicted), counts annotated."""
    n = len(labels)
    fig, ax = _figure(max(4.0, 0.45 * n + 2), max(3.5, 0.45 * n + 1.5))
    norm = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 25:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title)
    return _png(fig)
