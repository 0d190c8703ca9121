"""Offline post-process: fill short gaps of each track by linear interpolation.

An online tracker outputs a track only in frames where it matched a detection; a track that
coasts through a two-frame occlusion leaves two missed frames although the object is there. Once
the whole sequence is tracked, the boxes of gaps up to ``max_gap`` frames can be interpolated
between the frames either side (the usual offline step of ByteTrack/OC-SORT/BoT-SORT results
on MOTChallenge). It uses future frames, so it is opt-in and its numbers are reported apart from
the online ones (docs/tracking.md).

Example::

    >>> rows = np.array([[1, 7, 0, 0, 10, 20, 1, -1, -1, -1], [4, 7, 30, 0, 10, 20, 1, -1, -1, -1]])
    >>> interpolate_tracks(rows, max_gap=5)[:, :3].tolist()
    [[1.0, 7.0, 0.0], [2.0, 7.0, 10.0], [3.0, 7.0, 20.0], [4.0, 7.0, 30.0]]
"""
from __future__ import annotations

import numpy as np

__all__ = ["interpolate_tracks"]


def interpolate_tracks(rows: np.ndarray, max_gap: int = 20) -> np.ndarray:
    """MOT rows (frame, id, x, y, w, h, ...) with every gap of ``<= max_gap`` missing frames
    inside a track filled by linear interpolation of x, y, w, h (score of the earlier box);
    sorted by frame, id."""
    rows = np.asarray(rows, np.float64).reshape(-1, rows.shape[1] if np.ndim(rows) == 2 else 10)
    if len(rows) == 0 or max_gap < 1:
        return rows
    rows = rows[np.lexsort((rows[:, 0], rows[:, 1]))]            # by id, then frame
    same = rows[1:, 1] == rows[:-1, 1]
    gap = rows[1:, 0] - rows[:-1, 0] - 1
    todo = np.flatnonzero(same & (gap >= 1) & (gap <= max_gap))
    new = []
    for i in todo:
        a, b = rows[i], rows[i + 1]
        n = int(gap[i])
        t = (np.arange(1, n + 1) / (n + 1))[:, None]
        fill = np.repeat(a[None, :], n, axis=0)
        fill[:, 0] = a[0] + np.arange(1, n + 1)
        fill[:, 2:6] = a[2:6] + t * (b[2:6] - a[2:6])
        new.append(fill)
    out = np.concatenate([rows, *new]) if new else rows
    return out[np.lexsort((out[:, 1], out[:, 0]))]
