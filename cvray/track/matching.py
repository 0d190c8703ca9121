"""Association costs and assignment as free functions (ByteTrack's ``matching.py``).

Costs are distances in [0, 1] (IoU distance ``1 - IoU``, cosine distance); a pair that must never
match carries ``inf``. :func:`linear_assignment` solves the rectangular assignment with scipy and
leaves a row or column unmatched rather than pair it above ``max_cost`` (lapjv's ``cost_limit``
semantics: an unmatched row or column costs ``max_cost / 2``).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["box_iou", "centre_gate", "cosine_distance", "fuse_cost", "fuse_score", "iou_distance",
           "linear_assignment", "min_fuse_cost"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of xyxy boxes (0 where the union is empty)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    # few temporaries, in place: this is the hot loop of a crowded frame
    iw = np.minimum(a[:, 2:3], b[:, 2])
    iw -= np.maximum(a[:, 0:1], b[:, 0])
    np.maximum(iw, 0.0, out=iw)
    ih = np.minimum(a[:, 3:4], b[:, 3])
    ih -= np.maximum(a[:, 1:2], b[:, 1])
    np.maximum(ih, 0.0, out=ih)
    iw *= ih                                                   # intersection
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    union = area_a[:, None] + area_b
    union -= iw
    np.maximum(union, np.finfo(np.float64).tiny, out=union)   # empty union: IoU 0 (iw is 0 there)
    iw /= union
    return iw


def iou_distance(tracks_xyxy: np.ndarray, dets_xyxy: np.ndarray) -> np.ndarray:
    """``1 - IoU`` between track and detection boxes."""
    return 1.0 - box_iou(tracks_xyxy, dets_xyxy)


def fuse_score(iou_cost: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ByteTrack's score fusion: similarity ``IoU * score``, so confident detections win ties."""
    return 1.0 - (1.0 - iou_cost) * np.asarray(scores)[None, :]


def cosine_distance(track_emb: np.ndarray, det_emb: np.ndarray) -> np.ndarray:
    """``1 - cos`` between L2-normalised embeddings, in [0, 2]."""
    if len(track_emb) == 0 or len(det_emb) == 0:
        return np.zeros((len(track_emb), len(det_emb)))
    return np.clip(1.0 - np.asarray(track_emb) @ np.asarray(det_emb).T, 0.0, 2.0)


def centre_gate(tracks_xyxy: np.ndarray, dets_xyxy: np.ndarray, factor: float) -> np.ndarray:
    """True where the detection centre lies within ``factor`` track diagonals of the track centre."""
    t = np.asarray(tracks_xyxy).reshape(-1, 4)
    d = np.asarray(dets_xyxy).reshape(-1, 4)
    tc, dc = (t[:, :2] + t[:, 2:]) / 2, (d[:, :2] + d[:, 2:]) / 2
    diag = np.hypot(t[:, 2] - t[:, 0], t[:, 3] - t[:, 1])
    dist = np.linalg.norm(tc[:, None, :] - dc[None, :, :], axis=2)
    return dist <= factor * diag[:, None]


def fuse_cost(iou_cost: np.ndarray, app_cost: np.ndarray | None, weight: float,
              max_app: float) -> np.ndarray:
    """``(1 - w) * iou_cost + w * app_cost``; pairs whose appearance distance exceeds ``max_app``
    become ``inf``. Without embeddings the IoU cost is returned unchanged."""
    if app_cost is None or weight == 0:
        return iou_cost
    cost = (1.0 - weight) * iou_cost + weight * app_cost
    return np.where(app_cost > max_app, np.inf, cost)


def min_fuse_cost(cost: np.ndarray, iou_cost: np.ndarray, app_cost: np.ndarray, max_app: float,
                  proximity: float) -> np.ndarray:
    """BoT-SORT's fusion: appearance counts only for spatially close pairs (``iou_cost <=
    proximity``) and looks alike (``app_cost <= max_app``); there it halves like BoT-SORT
    (``app / 2``) and the cost is ``min(cost, app / 2)``. Elsewhere the motion cost stands."""
    app = np.where((iou_cost <= proximity) & (app_cost <= max_app), app_cost / 2.0, np.inf)
    return np.minimum(cost, app)


def linear_assignment(cost: np.ndarray, max_cost: float, *, return_arrays: bool = False):
    """Minimum-cost matching with no pair above ``max_cost``.

    Returns ``(matches (K, 2) [row, col], unmatched_rows, unmatched_cols)`` (or, with
    ``return_arrays``, ``(rows, cols, unmatched_rows, unmatched_cols)``). Pairs that are the only
    candidate of both their row and column are matched directly (exact, and most pairs in a
    tracking frame); the remaining ambiguous block is solved by scipy's Hungarian solver on the
    matrix extended with "stay unmatched" entries of cost ``max_cost / 2``.
    """
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    valid = cost <= max_cost                       # False for inf and NaN too
    row_deg, col_deg = valid.sum(1), valid.sum(0)
    solo = valid & (row_deg == 1)[:, None] & (col_deg == 1)[None, :]
    r1, c1 = np.nonzero(solo)
    row_solo, col_solo = np.zeros(n, bool), np.zeros(m, bool)
    row_solo[r1], col_solo[c1] = True, True
    rest_r = np.nonzero((row_deg > 0) & ~row_solo)[0]
    rest_c = np.nonzero((col_deg > 0) & ~col_solo)[0]
    rows, cols = r1, c1
    if len(rest_r) and len(rest_c):
        sub = cost[np.ix_(rest_r, rest_c)]
        sub_valid = valid[np.ix_(rest_r, rest_c)]
        a, b = sub.shape
        big = 2.0 * max_cost + 1.0 + (a + b)           # worse than leaving both unmatched
        ext = np.full((a + b, b + a), big)
        ext[:a, :b] = np.where(sub_valid, sub, big)
        ext[np.arange(a), b + np.arange(a)] = max_cost / 2   # row i stays unmatched
        ext[a + np.arange(b), np.arange(b)] = max_cost / 2   # column j stays unmatched
        ext[a:, b:] = 0.0
        rr, cc = linear_sum_assignment(ext)
        keep = (rr < a) & (cc < b)
        keep[keep] = sub_valid[rr[keep], cc[keep]]
        rows = np.concatenate([r1, rest_r[rr[keep]]])
        cols = np.concatenate([c1, rest_c[cc[keep]]])
    um_r, um_c = np.ones(n, bool), np.ones(m, bool)
    um_r[rows], um_c[cols] = False, False
    um_r, um_c = np.nonzero(um_r)[0], np.nonzero(um_c)[0]
    if return_arrays:
        return rows, cols, um_r, um_c
    return np.stack([rows, cols], axis=1).astype(np.int64), um_r, um_c
