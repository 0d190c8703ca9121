"""Track state and lifecycle, stored as a few packed arrays for all tracks of a sequence.

Lifecycle (ByteTrack's, with the confirmation count and deletion age made explicit)::

    TENTATIVE --(min_hits matched frames)--> CONFIRMED --(missed)--> LOST --(matched)--> CONFIRMED
        |                                                              |
        +--(missed before confirmation)--> DELETED <--(lost > max_age frames)

Track ids come from a per-instance counter (``TrackSet.next_id``), so two trackers in one process
(or an actor reused for another sequence after ``reset()``) never share ids.
"""
from __future__ import annotations

import numpy as np

from cvray.track.kalman import cxcywh_to_xyxy

__all__ = ["TENTATIVE", "CONFIRMED", "LOST", "DELETED", "STATE_NAMES", "TrackSet",
           "ID", "STATE", "HITS", "SINCE", "CLS", "START"]

TENTATIVE, CONFIRMED, LOST, DELETED = 0, 1, 2, 3
STATE_NAMES = ("tentative", "confirmed", "lost", "deleted")

#: columns of ``TrackSet.info``: id, lifecycle state, matched frames, frames since the last match,
#: class id, first frame
ID, STATE, HITS, SINCE, CLS, START = range(6)

# next state, indexed by [state, matched, hits >= min_hits, frames since match > max_age]
# (the diagram above as a table)
_NEXT = np.full((4, 2, 2, 2), DELETED, np.int64)
_NEXT[TENTATIVE, 1, 0] = TENTATIVE                 # matched, not enough hits yet
_NEXT[TENTATIVE, 1, 1] = CONFIRMED
_NEXT[CONFIRMED, 0] = LOST                         # missed
_NEXT[CONFIRMED, 1] = CONFIRMED
_NEXT[LOST, 0, :, 0] = LOST                        # missed, not expired
_NEXT[LOST, 1] = CONFIRMED                         # re-found
#: _NEXT as nested lists of Python ints (TrackSet.step_rows)
_NEXT_L = _NEXT.tolist()


class TrackSet:
    """All live tracks: row ``i`` of every array is one track.

    ``info`` (N, 6) int64 holds the integer fields (columns :data:`ID` ... :data:`START`),
    ``kf_state`` the Kalman mean and covariance packed by the filter, ``score`` the last matched
    detection score, ``obs`` the last matched measurement ``(cx, cy, w, h)`` and ``kf_last`` the
    filter state right after that match (OC-SORT's re-update starts from both; the tracker keeps
    these two current only when an OC-SORT stage reads them, else they hold the first ones), ``embedding`` the appearance gallery (None until a track has one). Few arrays
    means few operations to add, drop or gather tracks -- a tracker's per-frame cost is mostly the
    number of numpy calls, not their size.
    """

    def __init__(self, state_dim: int = 8 + 64) -> None:
        self.state_dim = state_dim
        self.reset()

    def reset(self) -> None:
        self.next_id = 1
        self.info = np.zeros((0, 6), np.int64)
        self.kf_state = np.zeros((0, self.state_dim))
        self.score = np.zeros(0)
        self.obs = np.zeros((0, 4))
        self.kf_last = np.zeros((0, self.state_dim))
        self.embedding: np.ndarray | None = None
        self.has_embedding: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.info)

    # read-only views of the info columns
    ids = property(lambda self: self.info[:, ID])
    state = property(lambda self: self.info[:, STATE])
    hits = property(lambda self: self.info[:, HITS])
    since_update = property(lambda self: self.info[:, SINCE])
    cls = property(lambda self: self.info[:, CLS])
    start_frame = property(lambda self: self.info[:, START])

    def add(self, kf_state: np.ndarray, score: np.ndarray, cls: np.ndarray, frame: int,
            confirmed: bool | np.ndarray, embedding: np.ndarray | None = None,
            obs: np.ndarray | None = None) -> np.ndarray:
        """Start tracks from packed Kalman states (``obs``: their first measurements, cxcywh);
        returns their new ids."""
        n = len(kf_state)
        info = np.empty((n, 6), np.int64)
        info[:, ID] = np.arange(self.next_id, self.next_id + n)
        info[:, STATE] = np.where(confirmed, CONFIRMED, TENTATIVE)   # bool or one per track
        info[:, HITS] = 1
        info[:, SINCE] = 0
        info[:, CLS] = cls
        info[:, START] = frame
        self.next_id += n
        n_old = len(self.info)
        self.info = np.concatenate([self.info, info])
        self.kf_state = np.concatenate([self.kf_state, kf_state])
        self.score = np.concatenate([self.score, score])
        self.obs = np.concatenate([self.obs, kf_state[:, :4] if obs is None else obs])
        self.kf_last = np.concatenate([self.kf_last, kf_state])
        if embedding is not None and self.embedding is None:
            self.embedding = np.zeros((n_old, embedding.shape[1]), np.float32)
            self.has_embedding = np.zeros(n_old, bool)
        if self.embedding is not None:
            emb = (np.asarray(embedding, np.float32) if embedding is not None
                   else np.zeros((n, self.embedding.shape[1]), np.float32))
            self.embedding = np.concatenate([self.embedding, emb])
            self.has_embedding = np.concatenate([self.has_embedding, np.full(n, embedding is not None)])
        return info[:, ID]

    def step(self, matched_rows: np.ndarray, min_hits: int, max_age: int, *, age_per_hit: float = 0.0,
             freeze_lost: bool = False, matched: np.ndarray | None = None) -> np.ndarray | None:
        """Lifecycle after a frame's association, for all tracks at once: matched rows count a hit
        (tentative -> confirmed at ``min_hits``, lost -> confirmed), missed ones go confirmed ->
        lost, tentative -> deleted, lost for more than ``max_age`` frames -> deleted. Deleted rows
        are dropped; returns the boolean mask of rows kept (``None`` when all are).

        ``age_per_hit > 0`` caps a track's ``max_age`` at ``age_per_hit`` frames per matched frame
        (a track seen twice is not kept as long as one seen for seconds); ``freeze_lost`` stops
        lost tracks where they were last seen instead of coasting at their velocity. ``matched``:
        the 0/1 ``uint8`` row mask of ``matched_rows`` when the caller has it already."""
        info = self.info
        n = len(info)
        if n == 0:
            return None
        if matched is None:
            matched = np.zeros(n, np.uint8)              # 0/1 integers (a bool array would act as a mask)
            matched[matched_rows] = 1
        hits, since = info[:, HITS], info[:, SINCE]
        hits += matched
        since[matched_rows] = 0
        if age_per_hit <= 0:
            cap = max_age
        elif age_per_hit == 1.0:
            cap = np.minimum(hits, max_age)        # (integers: the same comparison, one call fewer)
        else:
            cap = np.minimum(max_age, age_per_hit * hits)
        new = _NEXT[info[:, STATE], matched, (hits >= min_hits).view(np.uint8), (since > cap).view(np.uint8)]
        info[:, STATE] = new
        # a lost track coasts at constant position velocity but stops growing (ByteTrack zeroes
        # the size velocity of lost tracks before each prediction; once is the same: the
        # prediction leaves velocities unchanged and lost tracks get no update)
        lost = (new == LOST).nonzero()[0]
        if len(lost):
            self.kf_state[lost, 4 if freeze_lost else 6:8] = 0.0
        keep = new != DELETED
        if np.count_nonzero(keep) == n:
            return None
        self.info, self.kf_state, self.score = (info.compress(keep, axis=0), self.kf_state.compress(keep, axis=0),
                                                self.score[keep])
        self.obs, self.kf_last = self.obs.compress(keep, axis=0), self.kf_last.compress(keep, axis=0)
        if self.embedding is not None:
            self.embedding, self.has_embedding = self.embedding[keep], self.has_embedding[keep]
        return keep

    def step_rows(self, det_of: list, min_hits: int, max_age: int, *, age_per_hit: float = 0.0,
                  freeze_lost: bool = False, shown: list | None = None,
                  show_tentative: bool = False, since_step: int = 0) -> np.ndarray | None:
        """:meth:`step` on Python ints for a handful of tracks (fewer numpy calls; the same integer
        arithmetic and table, so the same result): ``det_of[i] >= 0`` marks row ``i`` matched.
        ``age_per_hit`` must be 0 (no cap) or 1 (cap ``min(hits, max_age)``). ``shown``: a list
        that gets the new (kept) row indices, ascending, of the matched rows now confirmed (with
        ``show_tentative`` also the tentative ones: every matched row). ``since_step``: added
        to the frames since the last match of the unmatched rows first (the frame's step that
        the tracker otherwise adds to the whole column before the association)."""
        info = self.info
        n = len(info)
        if n == 0:
            return None
        rows = info.tolist()
        nxt = _NEXT_L
        capped = age_per_hit > 0
        lost, deleted = [], 0
        for i, row in enumerate(rows):
            if det_of[i] >= 0:
                h = row[HITS] = row[HITS] + 1
                row[SINCE] = 0
                st = nxt[row[STATE]][1][h >= min_hits][0 > (max_age if not capped or h > max_age else h)]
                row[STATE] = st
                if shown is not None and (st == CONFIRMED or show_tentative):   # (never deleted)
                    shown.append(i - deleted)
                continue
            else:
                h, s = row[HITS], row[SINCE] + since_step
                row[SINCE] = s
                st = nxt[row[STATE]][0][h >= min_hits][s > (max_age if not capped or h > max_age else h)]
            row[STATE] = st
            if st == LOST:
                lost.append(i)
            elif st == DELETED:
                deleted += 1
        if lost:
            ks = self.kf_state
            lo = 4 if freeze_lost else 6
            if ks.flags.c_contiguous and len(lost) <= 8:
                k = ks.data
                for i in lost:
                    for j in range(lo, 8):
                        k[i, j] = 0.0
            else:
                ks[lost, lo:8] = 0.0
        if not deleted:
            self.info = np.array(rows, np.int64)
            return None
        keep_l = [row[STATE] != DELETED for row in rows]
        keep = np.array(keep_l)
        self.info = np.array([row for row, k in zip(rows, keep_l) if k], np.int64).reshape(-1, 6)
        self.kf_state, self.score = self.kf_state.compress(keep, axis=0), self.score[keep]
        self.obs, self.kf_last = self.obs.compress(keep, axis=0), self.kf_last.compress(keep, axis=0)
        if self.embedding is not None:
            self.embedding, self.has_embedding = self.embedding[keep], self.has_embedding[keep]
        return keep

    def update_embedding(self, idx: np.ndarray, emb: np.ndarray, momentum: float) -> None:
        """Gallery EMA ``e = m e + (1 - m) new`` (first embedding taken as is), kept unit length."""
        if len(idx) == 0:
            return
        if self.embedding is None:
            self.embedding = np.zeros((len(self.info), emb.shape[1]), np.float32)
            self.has_embedding = np.zeros(len(self.info), bool)
        old = self.embedding[idx]
        has = self.has_embedding[idx][:, None]
        new = np.where(has, momentum * old + (1 - momentum) * emb, emb)
        new /= np.linalg.norm(new, axis=1, keepdims=True) + 1e-12
        self.embedding[idx] = new
        self.has_embedding[idx] = True

    def xyxy(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Current (predicted or corrected) boxes, xyxy."""
        if isinstance(idx, slice):
            return cxcywh_to_xyxy(self.kf_state[idx, :4])
        return cxcywh_to_xyxy(self.kf_state[:, :4].take(idx, axis=0))   # (take: cheaper than a fancy index)
