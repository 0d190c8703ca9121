"""Post-processing of raw detections: score threshold → NMS / Soft-NMS → max detections.

The policy is a :class:`~cvray.predict.config.PostprocessConfig`; :func:`policy_record` gives the
plain dict stored with every predictions run. Hard NMS is ``torchvision.ops`` (``nms`` and
``batched_nms``). Soft-NMS (Bodla et al., ICCV 2017) has no torchvision op, so it is written
here following the paper's Algorithm 1 (numbers in comments).
"""
from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import batched_nms, box_iou, nms

from cvray.predict.config import PostprocessConfig
from cvray.predict.records import Detections

__all__ = ["postprocess", "soft_nms", "policy_record"]


def soft_nms(boxes: np.ndarray, scores: np.ndarray, *, method: str, iou_threshold: float,
             sigma: float, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS over one set of boxes; returns (kept indices in pick order, decayed scores).

    linear:   s_i <- s_i * (1 - iou)        if iou >= iou_threshold
    gaussian: s_i <- s_i * exp(-iou^2 / sigma)  (for every remaining box)
    """
    if method not in ("linear", "gaussian"):
        raise ValueError(f"soft_nms method must be 'linear' or 'gaussian', got {method!r}")
    b = torch.as_tensor(np.asarray(boxes, np.float64)).reshape(-1, 4)
    s = np.asarray(scores, np.float64).copy()
    remaining = list(range(len(s)))
    keep, kept_scores = [], []
    while remaining:
        # 1. pick the highest-scoring remaining box M (ties: lowest index, deterministic)
        r = np.asarray(remaining)
        m = int(r[np.argmax(s[r])])
        if s[m] < min_score:
            break
        keep.append(m)
        kept_scores.append(s[m])
        remaining.remove(m)
        if not remaining:
            break
        # 2. decay the scores of the rest by their overlap with M
        r = np.asarray(remaining)
        iou = box_iou(b[m:m + 1], b[r]).numpy()[0]
        if method == "linear":
            decay = np.where(iou >= iou_threshold, 1.0 - iou, 1.0)
        else:
            decay = np.exp(-(iou ** 2) / sigma)
        s[r] = s[r] * decay
        # 3. drop boxes that decayed below the floor
        remaining = [i for i in remaining if s[i] >= min_score]
    return np.asarray(keep, dtype=np.int64), np.asarray(kept_scores, dtype=np.float64)


def postprocess(det: Detections, cfg: PostprocessConfig) -> Detections:
    """Apply the policy to one image's detections (a new record; the input is unchanged)."""
    # 1. score threshold
    det = det.select(det.scores >= cfg.score_threshold)
    if len(det) == 0:
        return det
    boxes = torch.as_tensor(det.boxes, dtype=torch.float64)
    scores = torch.as_tensor(det.scores, dtype=torch.float64)
    labels = torch.as_tensor(det.labels, dtype=torch.int64)
    # 2. overlap suppression
    if cfg.soft_nms != "off":
        if cfg.nms == "none":
            raise ValueError("soft_nms needs nms='classwise' or 'agnostic' to know which boxes compete")
        groups = [np.arange(len(det))] if cfg.nms == "agnostic" else \
            [np.flatnonzero(det.labels == c) for c in np.unique(det.labels)]
        idx, new_scores = [], []
        for g in groups:
            k, s = soft_nms(det.boxes[g], det.scores[g], method=cfg.soft_nms, iou_threshold=cfg.nms_iou,
                            sigma=cfg.soft_nms_sigma, min_score=cfg.soft_nms_min_score)
            idx.append(g[k])
            new_scores.append(s)
        keep = np.concatenate(idx)
        s_new = np.concatenate(new_scores)
        order = np.argsort(-s_new, kind="stable")
        det = det.select(keep[order])
        det.scores = s_new[order]
    else:
        if cfg.nms == "classwise":
            keep = batched_nms(boxes, scores, labels, cfg.nms_iou)
        elif cfg.nms == "agnostic":
            keep = nms(boxes, scores, cfg.nms_iou)
        else:
            keep = torch.argsort(scores, descending=True, stable=True)
        det = det.select(keep.numpy())
    # 3. max detections (already sorted by score, highest first)
    return det.select(np.arange(min(len(det), cfg.max_detections)))


def policy_record(cfg: PostprocessConfig) -> dict:
    """The policy as plain JSON data (stored in the run manifest and the predictions metadata)."""
    return cfg.model_dump(mode="json")
