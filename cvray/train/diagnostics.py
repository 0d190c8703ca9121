"""Learning diagnostics: warning rows in the issues table when a run is not learning.

A run that does not learn still finishes, writes checkpoints and reports AP 0.000 -- the model
then silently poisons everything after it (a tuning trial, a robustness grid, the tracker). These
checks turn the usual causes into rows of the run's ``issues`` table (stage ``train``):

1. ``train.loss_not_falling``: the mean loss of the last ``window`` steps is not at least
   ``min_loss_drop`` below the mean of the first ``window`` steps after warmup (lr too low or too
   high, frozen layers, broken targets);
2. ``train.no_positives``: steps whose batch held no ground-truth instance (an augmentation that
   crops every object away, a label map that drops every class);
3. ``train.anchor_mismatch``: many training boxes, at the model's input scale, overlap no anchor
   shape well (best IoU of centred shapes below ``anchor_iou``) -- anchors too large for the
   objects, as with torchvision's COCO anchors on 8 px objects;
4. ``train.zero_ap``: the last validation AP is exactly 0.

Pure functions of plain data (curves rows, eval rows, box sizes); no torch, no Ray.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from cvray.runs.issues import Issue, issue

__all__ = ["anchor_coverage", "learning_issues"]

STAGE = "train"


def anchor_coverage(box_wh: np.ndarray, sizes: Sequence[int], ratios: Sequence[float] = (0.5, 1.0, 2.0)) -> np.ndarray:
    """Best IoU of each (w, h) box with any anchor shape, both centred at the same point.

    Anchor shapes follow torchvision's ``AnchorGenerator``: for size ``s`` and ratio ``r`` (h/w),
    ``w = s / sqrt(r)``, ``h = s * sqrt(r)``.
    """
    wh = np.asarray(box_wh, np.float64).reshape(-1, 2)
    if not len(wh):
        return np.zeros(0)
    r = np.sqrt(np.asarray(ratios, np.float64))
    s = np.asarray(sizes, np.float64)
    aw = (s[:, None] / r[None, :]).ravel()
    ah = (s[:, None] * r[None, :]).ravel()
    inter = np.minimum(wh[:, :1], aw[None]) * np.minimum(wh[:, 1:], ah[None])
    union = wh[:, :1] * wh[:, 1:] + aw[None] * ah[None] - inter
    return (inter / union).max(1)


def learning_issues(curves: list[dict[str, Any]], history: list[dict[str, Any]], *, warmup_iters: int,
                    min_loss_drop: float, window: int, metric: str,
                    box_wh: np.ndarray | None = None, anchor_sizes: Sequence[int] | None = None,
                    anchor_iou: float = 0.5, max_mismatch: float = 0.2) -> list[Issue]:
    """The warning rows for one finished (or stopped) run; empty when it learns."""
    out: list[Issue] = []
    after = [r for r in curves if r["iteration"] > warmup_iters and math.isfinite(r.get("loss", math.nan))]
    if len(after) >= 2 * window:
        first = float(np.mean([r["loss"] for r in after[:window]]))
        last = float(np.mean([r["loss"] for r in after[-window:]]))
        if last > (1.0 - min_loss_drop) * first:
            out.append(issue(STAGE, "train.loss_not_falling",
                             f"mean loss {first:.3f} over iterations {after[0]['iteration']}-"
                             f"{after[window - 1]['iteration']} (after warmup) and {last:.3f} over the last "
                             f"{window}: fell by {1 - last / first:.0%}, less than train.diagnostics."
                             f"min_loss_drop={min_loss_drop:.0%} (check optim.lr, frozen layers, targets)"))
    starved = [int(r["iteration"]) for r in curves if r.get("positives") == 0]
    if starved:
        out.append(issue(STAGE, "train.no_positives",
                         f"{len(starved)} of {len(curves)} steps had no ground-truth instance in the batch "
                         f"(first at iteration {starved[0]}): augmentation or label mapping drops every object"))
    if box_wh is not None and anchor_sizes and len(box_wh):
        best = anchor_coverage(box_wh, anchor_sizes)
        poor = float(np.mean(best < anchor_iou))
        if poor > max_mismatch:
            w = np.sqrt(np.prod(np.asarray(box_wh, np.float64), 1))
            out.append(issue(STAGE, "train.anchor_mismatch",
                             f"{poor:.0%} of {len(best)} training boxes overlap no anchor shape with IoU >= "
                             f"{anchor_iou} at the model's input scale (box size median {np.median(w):.1f} px, "
                             f"10th percentile {np.percentile(w, 10):.1f} px; anchors {list(anchor_sizes)}): "
                             f"set train.model.anchor_sizes to the objects' sizes"))
    if history:
        value = history[-1].get(metric)
        if value is not None and value == 0.0:
            out.append(issue(STAGE, "train.zero_ap",
                             f"{metric} is exactly 0 at iteration {history[-1]['iteration']}: the model "
                             f"detects nothing on the validation split"))
    return out


def scaled_box_sizes(records: Iterable[dict], min_size: int, max_size: int) -> np.ndarray:
    """(w, h) of every non-crowd box at the size torchvision's transform resizes its image to."""
    out = []
    for rec in records:
        h, w = float(rec["height"]), float(rec["width"])
        scale = min(min_size / min(h, w), max_size / max(h, w))
        for a in rec.get("annotations", ()):
            if a.get("iscrowd") or len(a.get("bbox", ())) != 4:
                continue
            bw, bh = float(a["bbox"][2]), float(a["bbox"][3])
            if bw > 0 and bh > 0:
                out.append((bw * scale, bh * scale))
    return np.asarray(out, np.float64).reshape(-1, 2)
