"""Detection-level parity of two runs of a detector on the same images (pure numpy; no Ray).

Per image, the reference's detections (eager torch) are matched to the candidate's (onnxruntime)
greedily by reference score: each takes the unmatched candidate of the same label with the highest
IoU, if that IoU >= ``iou`` (0.5). Over all images:

* ``match_rate`` = matched / (reference + candidate - matched): 1.0 only when every detection on
  both sides found its twin (a missing and an extra detection both count against it);
* ``max_box_px`` / ``mean_box_px``: |coordinate difference| of matched boxes, pixels of the
  model input;
* ``max_score`` / ``mean_score``: |score difference| of matched detections;
* ``mask_iou_min`` / ``mask_iou_mean``: IoU of the matched soft masks binarised at 0.5.

:func:`verdict` holds the numbers against the tolerances (``ParityTolerance``): on the worst pair
(``on="max"``: FP32, where every pair agrees to float rounding) or on the mean over pairs
(``on="mean"``: INT8, where a few detections near a decision boundary move a lot and the mean says
whether the model as a whole is the same one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ParityTolerance", "box_iou", "match_detections", "parity_stats", "verdict"]


@dataclass(frozen=True)
class ParityTolerance:
    match_rate: float
    box_px: float
    score: float
    mask_iou: float | None  # min (on="max") / mean (on="mean") IoU of matched masks; None: not held
    on: str = "max"          # "max": the worst matched pair; "mean": the mean over matched pairs


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a) x len(b)) of xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_detections(ref: dict[str, np.ndarray], cand: dict[str, np.ndarray], iou: float = 0.5
                     ) -> list[tuple[int, int]]:
    """(reference index, candidate index) pairs: same label, IoU >= ``iou``, greedy by reference score."""
    rb, cb = np.asarray(ref["boxes"]).reshape(-1, 4), np.asarray(cand["boxes"]).reshape(-1, 4)
    if not len(rb) or not len(cb):
        return []
    ious = box_iou(rb, cb)
    same = np.asarray(ref["labels"]).reshape(-1)[:, None] == np.asarray(cand["labels"]).reshape(-1)[None, :]
    ious = np.where(same, ious, -1.0)
    taken = np.zeros(len(cb), bool)
    pairs = []
    for i in np.argsort(-np.asarray(ref["scores"]).reshape(-1), kind="stable"):
        row = np.where(taken, -1.0, ious[i])
        j = int(np.argmax(row))
        if row[j] >= iou:
            taken[j] = True
            pairs.append((int(i), j))
    return pairs


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a) >= 0.5, np.asarray(b) >= 0.5
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def parity_stats(refs: list[dict[str, np.ndarray]], cands: list[dict[str, np.ndarray]], iou: float = 0.5
                 ) -> dict[str, Any]:
    """The parity numbers of the module doc over paired per-image outputs."""
    if len(refs) != len(cands):
        raise ValueError(f"{len(refs)} reference outputs vs {len(cands)} candidate outputs")
    n_ref = n_cand = matched = 0
    box_d: list[float] = []
    score_d: list[float] = []
    mask_ious: list[float] = []
    for r, c in zip(refs, cands):
        pairs = match_detections(r, c, iou)
        n_ref, n_cand, matched = n_ref + len(r["boxes"]), n_cand + len(c["boxes"]), matched + len(pairs)
        for i, j in pairs:
            box_d.append(float(np.abs(np.asarray(r["boxes"][i], np.float64) - c["boxes"][j]).max()))
            score_d.append(abs(float(r["scores"][i]) - float(c["scores"][j])))
            if "masks" in r and "masks" in c:
                mask_ious.append(_mask_iou(np.squeeze(r["masks"][i]), np.squeeze(c["masks"][j])))
    denom = n_ref + n_cand - matched
    return {
        "images": len(refs), "reference_detections": n_ref, "candidate_detections": n_cand, "matched": matched,
        "match_rate": matched / denom if denom else 1.0,
        "max_box_px": max(box_d) if box_d else 0.0, "mean_box_px": float(np.mean(box_d)) if box_d else 0.0,
        "max_score": max(score_d) if score_d else 0.0, "mean_score": float(np.mean(score_d)) if score_d else 0.0,
        "mask_iou_min": min(mask_ious) if mask_ious else None,
        "mask_iou_mean": float(np.mean(mask_ious)) if mask_ious else None,
    }


def verdict(stats: dict[str, Any], tol: ParityTolerance) -> tuple[bool, list[str]]:
    """(passed, the reasons it failed: each number against its tolerance)."""
    if tol.on not in ("max", "mean"):
        raise ValueError(f"ParityTolerance.on={tol.on!r}: max or mean")
    worst = tol.on == "max"
    box, score = (stats["max_box_px"], stats["max_score"]) if worst else (stats["mean_box_px"], stats["mean_score"])
    mask = stats.get("mask_iou_min" if worst else "mask_iou_mean")
    why = []
    if stats["match_rate"] < tol.match_rate:
        why.append(f"match rate {stats['match_rate']:.4f} < {tol.match_rate}")
    if box > tol.box_px:
        why.append(f"{tol.on} |box delta| {box:.3g} px > {tol.box_px}")
    if score > tol.score:
        why.append(f"{tol.on} |score delta| {score:.3g} > {tol.score}")
    if tol.mask_iou is not None and mask is not None and mask < tol.mask_iou:
        why.append(f"{'min' if worst else 'mean'} mask IoU {mask:.4f} < {tol.mask_iou}")
    return not why, why
