"""Track state and lifecycle, stored as one struct of arrays for all tracks of a sequence.

Lifecycle (ByteTrack's, with the confirmation count and deletion age made explicit)::

    TENTATIVE --(min_hits matched frames)--> CONFIRMED --(missed)--> LOST --(matched)--> CONFIRMED
        |                                                              |
        +--(missed before confirmation)--> DELETED <--(lost > max_age frames)

Track ids come from a per-instance counter (``TrackSet.next_id``), so two trackers in one process
(or an actor reused for another sequence after ``reset()``) never share ids.
"""
from __future__ import annotations

import numpy as np

__all__ = ["TENTATIVE", "CONFIRMED", "LOST", "DELETED", "STATE_NAMES", "TrackSet"]

TENTATIVE, CONFIRMED, LOST, DELETED = 0, 1, 2, 3
STATE_NAMES = ("tentative", "confirmed", "lost", "deleted")


class TrackSet:
    """All live tracks: row ``i`` of every array is one track."""

    def __init__(self, embedding_dim: int = 0) -> None:
        self.embedding_dim = embedding_dim
        self.reset()

    def reset(self) -> None:
        self.next_id = 1
        self.ids = np.zeros(0, np.int64)
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 8, 8))
        self.state = np.zeros(0, np.int8)
        self.hits = np.zeros(0, np.int32)
        self.since_update = np.zeros(0, np.int32)
        self.score = np.zeros(0)
        self.cls = np.zeros(0, np.int64)
        self.start_frame = np.zeros(0, np.int64)
        self.embedding = np.zeros((0, self.embedding_dim), np.float32)
        self.has_embedding = np.zeros(0, bool)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, mean: np.ndarray, cov: np.ndarray, score: np.ndarray, cls: np.ndarray, frame: int,
            confirmed: bool, embedding: np.ndarray | None = None) -> np.ndarray:
        """Start tracks; returns their new ids."""
        n = len(mean)
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        self.ids = np.concatenate([self.ids, ids])
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.state = np.concatenate([self.state, np.full(n, CONFIRMED if confirmed else TENTATIVE, np.int8)])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int32)])
        self.since_update = np.concatenate([self.since_update, np.zeros(n, np.int32)])
        self.score = np.concatenate([self.score, score])
        self.cls = np.concatenate([self.cls, cls])
        self.start_frame = np.concatenate([self.start_frame, np.full(n, frame, np.int64)])
        if embedding is not None and self.embedding_dim == 0 and n:
            self.embedding_dim = embedding.shape[1]
            self.embedding = np.zeros((len(self.ids) - n, self.embedding_dim), np.float32)
        emb = (np.asarray(embedding, np.float32) if embedding is not None
               else np.zeros((n, self.embedding_dim), np.float32))
        self.embedding = np.concatenate([self.embedding, emb])
        self.has_embedding = np.concatenate([self.has_embedding, np.full(n, embedding is not None)])
        return ids

    def mark_matched(self, idx: np.ndarray, min_hits: int) -> None:
        """Matched this frame: count the hit, confirm tentative tracks with enough hits, re-find lost."""
        self.hits[idx] += 1
        self.since_update[idx] = 0
        st = self.state[idx]
        confirm = (st == LOST) | ((st == TENTATIVE) & (self.hits[idx] >= min_hits))
        self.state[idx[confirm]] = CONFIRMED

    def mark_missed(self, idx: np.ndarray) -> None:
        """Unmatched this frame: confirmed -> lost, tentative -> deleted (ByteTrack removes them)."""
        st = self.state[idx]
        self.state[idx[st == CONFIRMED]] = LOST
        self.state[idx[st == TENTATIVE]] = DELETED

    def update_embedding(self, idx: np.ndarray, emb: np.ndarray, momentum: float) -> None:
        """Gallery EMA ``e = m e + (1 - m) new`` (first embedding taken as is), kept unit length."""
        if len(idx) == 0:
            return
        old = self.embedding[idx]
        has = self.has_embedding[idx][:, None]
        new = np.where(has, momentum * old + (1 - momentum) * emb, emb)
        new /= np.linalg.norm(new, axis=1, keepdims=True) + 1e-12
        self.embedding[idx] = new
        self.has_embedding[idx] = True

    def expire(self, max_age: int) -> None:
        """Delete lost tracks unmatched for more than ``max_age`` frames, then drop deleted rows."""
        self.state[(self.state == LOST) & (self.since_update > max_age)] = DELETED
        keep = self.state != DELETED
        if keep.all():
            return
        for name in ("ids", "mean", "cov", "state", "hits", "since_update", "score", "cls",
                     "start_frame", "embedding", "has_embedding"):
            setattr(self, name, getattr(self, name)[keep])

    def xyxy(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Current (predicted or corrected) boxes, xyxy."""
        m = self.mean[idx]
        return np.concatenate([m[:, :2] - m[:, 2:4] / 2, m[:, :2] + m[:, 2:4] / 2], axis=1)
