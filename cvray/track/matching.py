"""Association costs and assignment as free functions (ByteTrack's ``matching.py``).

Costs are distances in [0, 1] (IoU distance ``1 - IoU``, cosine distance); a pair that must never
match carries ``inf``. :func:`solve` / :func:`linear_assignment` solve the rectangular assignment with one scipy call
and leave a row or column unmatched rather than pair it above ``max_cost`` (lapjv's
``cost_limit`` semantics: an unmatched row or column costs ``max_cost / 2``).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["box_area", "box_iou", "buffer_boxes", "centre_gate", "cosine_distance", "fuse_cost", "fuse_score", "iou_distance",
           "linear_assignment", "min_fuse_cost", "solve", "solve_similarity"]

_EMPTY = np.zeros(0, np.int64)


_TINY = np.finfo(np.float64).tiny
#: :func:`_solve_gain` tries its no-conflict fast path on matrices up to this size (larger ones
#: mostly have competing pairs, and the check would cost more than it saves)
_FAST_MAX = 1024
#: box_iou gathers every pair's boxes and computes x and y in the same calls up to this many pairs
#: (fewer, plain calls; crowded frames go column by column, broadcasting, without the gather)
_XY_TOGETHER_MAX = 256


_PAIR_IDX: dict[tuple[int, int], np.ndarray] = {}


def _pair_index(n: int, m: int) -> np.ndarray:
    """Flat indices into ``concatenate([a, b])`` (``n + m`` xyxy rows) of :func:`box_iou`'s small
    path, (2, 2, 2, n*m): corner (x1, y1 / x2, y2), coordinate (x / y), ``a``'s box / ``b``'s box,
    pair (row-major over (n, m));
    cached per shape (at most _XY_TOGETHER_MAX pairs, so the cache stays small)."""
    rows = np.stack([np.repeat(np.arange(n), m), n + np.tile(np.arange(m), n)])
    idx = rows[None, None] * 4 + np.arange(4).reshape(2, 2, 1, 1)       # xyxy = (x1, y1), (x2, y2)
    _PAIR_IDX[(n, m)] = idx
    return idx


def box_area(b: np.ndarray) -> np.ndarray:
    """Areas (N,) of xyxy boxes, ``max(x2 - x1, 0) * max(y2 - y1, 0)`` (what :func:`box_iou`
    uses; pass it as ``area_b`` when the same boxes meet several box sets)."""
    bt = np.asarray(b, dtype=np.float64).reshape(-1, 4).T
    wh = bt[2:] - bt[:2]
    np.maximum(wh, 0.0, out=wh)
    return wh[0] * wh[1]


def box_iou(a: np.ndarray, b: np.ndarray, area_b: np.ndarray | None = None) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of xyxy boxes (0 where the union is empty); ``area_b``:
    :func:`box_area` of ``b`` when already known (one frame's detections meet several box sets)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    n, m = len(a), len(b)
    if n * m <= _XY_TOGETHER_MAX:
        # a handful of boxes: every pair's two boxes gathered by one ``take`` into (2, 2, 2, N*M)
        # (low / high corner, x / y, track box / detection box, pair), then each step is one call
        # on contiguous rows, x and y together (a broadcasting or strided call costs several
        # times a plain one at this size); the same operations on each pair as the column path
        # below, so the same numbers
        idx = _PAIR_IDX.get((n, m))
        if idx is None:
            idx = _pair_index(n, m)
        s = np.concatenate([a, b]).take(idx)
        wh = s[1] - s[0]                                        # (w, h) x (track, det) x pair
        np.maximum(wh, 0.0, out=wh)
        area = wh[0] * wh[1]
        union = area[0] + area[1]
        hi = np.minimum(s[1, :, 0], s[1, :, 1])
        hi -= np.maximum(s[0, :, 0], s[0, :, 1])
        np.maximum(hi, 0.0, out=hi)
        inter = hi[0] * hi[1]
        union -= inter
        np.maximum(union, _TINY, out=union)
        inter /= union
        return inter.reshape(n, m)
    # few temporaries, in place: this is the hot loop of a crowded frame
    iw = np.minimum(a[:, 2:3], b[:, 2])
    iw -= np.maximum(a[:, 0:1], b[:, 0])
    np.maximum(iw, 0.0, out=iw)
    ih = np.minimum(a[:, 3:4], b[:, 3])
    ih -= np.maximum(a[:, 1:2], b[:, 1])
    np.maximum(ih, 0.0, out=ih)
    iw *= ih                                                   # intersection
    at = a.T
    wh = at[2:] - at[:2]
    np.maximum(wh, 0.0, out=wh)
    union = (wh[0] * wh[1])[:, None] + (box_area(b) if area_b is None else area_b)
    union -= iw
    np.maximum(union, _TINY, out=union)                        # empty union: IoU 0 (iw is 0 there)
    iw /= union
    return iw


def buffer_boxes(xyxy: np.ndarray, b: float) -> np.ndarray:
    """xyxy boxes widened by ``b`` times their width (height) on the left and right (top and
    bottom): C-BIoU's buffered box, ``w' = (1 + 2b) w``."""
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    pad = (xyxy[:, 2:] - xyxy[:, :2]) * b
    return xyxy + np.concatenate([-pad, pad], axis=1)


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


def solve(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray]:
    """Matched ``(rows, cols)`` of the minimum-cost matching with no pair above ``max_cost``.

    Leaving a row and a column unmatched costs ``max_cost`` (``max_cost / 2`` each, lapjv's
    ``cost_limit`` semantics), so the problem is to maximise the gain ``max_cost - cost`` over
    valid pairs. Invalid pairs (above ``max_cost``, ``inf``, NaN) get gain 0; with every gain
    ``>= 0`` the best full rectangular assignment has the same gain as the best partial one, so a
    single scipy call on the ``(n, m)`` matrix solves it (no ``(n+m)^2`` extended matrix) and the
    zero-gain invalid pairs it was forced to make are dropped afterwards.
    """
    return _solve_gain(max_cost - cost)               # inf / NaN costs: -inf / NaN gain, never kept


def solve_similarity(sim: np.ndarray, min_sim: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`solve` for a similarity matrix (``cost = 1 - sim``, ``max_cost = 1 - min_sim``): the
    gain of a pair is ``sim - min_sim``; pairs below ``min_sim`` are never matched."""
    if 0 < sim.size <= _FAST_MAX:
        # _solve_gain's fast path on the similarity itself (no gain matrix): for floats,
        # ``sim - min_sim > 0`` iff ``sim > min_sim`` and ``>= 0`` iff ``>=`` (a difference of
        # two distinct floats is never 0; NaN compares false both ways), so the same pairs
        rows, cols = (sim > min_sim).nonzero()
        k = len(rows)
        if k == np.count_nonzero(sim >= min_sim) and (
                k <= 1 or (len(set(rows.tolist())) == k and len(set(cols.tolist())) == k)):
            return rows, cols
        return _solve_gain(sim - min_sim, fast=False)
    return _solve_gain(sim - min_sim)


def _solve_gain(gain: np.ndarray, fast: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Best matching over pairs with ``gain >= 0`` (negative or NaN gain: never matched);
    ``fast=False``: the caller has found the fast path below not to apply."""
    if gain.shape[0] == 0 or gain.shape[1] == 0:
        return _EMPTY, _EMPTY
    # Fast path (most frames): the pairs with positive gain share no row and no column. Then
    # every maximum-gain assignment contains all of them and nothing else of positive gain, so
    # they are the answer -- the pairs scipy returns, in its order (rows ascending). Not taken
    # when a pair has gain exactly 0 (kept or not at scipy's discretion) or rows/columns compete.
    if fast and gain.size <= _FAST_MAX:
        rows, cols = (gain > 0.0).nonzero()
        k = len(rows)
        if k == np.count_nonzero(gain >= 0.0):
            if k <= 1:
                return rows, cols
            if len(set(rows.tolist())) == k and len(set(cols.tolist())) == k:
                return rows, cols
    rows, cols = linear_sum_assignment(np.fmax(gain, 0.0), maximize=True)
    keep = gain[rows, cols] >= 0.0
    return rows[keep], cols[keep]


def linear_assignment(cost: np.ndarray, max_cost: float, *, return_arrays: bool = False):
    """Minimum-cost matching with no pair above ``max_cost`` (see :func:`solve`).

    Returns ``(matches (K, 2) [row, col], unmatched_rows, unmatched_cols)`` (or, with
    ``return_arrays``, ``(rows, cols, unmatched_rows, unmatched_cols)``).
    """
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    rows, cols = solve(cost, max_cost)
    um_r, um_c = np.ones(n, bool), np.ones(m, bool)
    um_r[rows], um_c[cols] = False, False
    um_r, um_c = np.nonzero(um_r)[0], np.nonzero(um_c)[0]
    if return_arrays:
        return rows, cols, um_r, um_c
    return np.stack([rows, cols], axis=1).astype(np.int64), um_r, um_c
