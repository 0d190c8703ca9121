"""ByteTrack-style tracker: Kalman prediction, gating, two-stage association, track lifecycle.

Pure numpy; one instance tracks one sequence, frames in order (``update`` per frame). ``reset()``
makes the instance ready for another sequence (ids restart at 1), so a Ray actor can reuse it.

Example::

    >>> tracker = Tracker(TrackConfig(), frame_rate=30)
    >>> out = tracker.update(Detections(boxes=[[10, 10, 50, 90]], scores=[0.9]))
    >>> out.ids
    array([1])
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from cvray.track import matching
from cvray.track.config import TrackConfig
from cvray.track.kalman import KalmanFilter, xyxy_to_cxcywh
from cvray.track.records import Detections, FrameTracks
from cvray.track.track import CONFIRMED, LOST, STATE_NAMES, TENTATIVE, TrackSet

__all__ = ["Tracker"]

log = logging.getLogger(__name__)

#: ``extractor(image, boxes_xyxy) -> (N, D)`` L2-normalised embeddings
Extractor = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Tracker:
    """Multi-object tracker (BYTE association, Zhang et al. 2022, with optional appearance and CMC).

    ``extractor`` computes appearance embeddings from the frame image when detections do not carry
    them; ``cmc`` (a :class:`cvray.track.cmc.CameraMotion`) warps predictions by the estimated camera
    motion. Both need the ``image`` argument of :meth:`update`.
    """

    def __init__(self, config: TrackConfig | None = None, *, frame_rate: float = 30.0,
                 extractor: Extractor | None = None, cmc: Any = None) -> None:
        self.cfg = config or TrackConfig()
        self.frame_rate = float(frame_rate)
        self.max_age = self.cfg.max_age_frames(self.frame_rate)
        self.kf = KalmanFilter(self.cfg.kalman.std_weight_position, self.cfg.kalman.std_weight_velocity)
        self.extractor = extractor
        self.cmc = cmc
        self.tracks = TrackSet()
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and restart ids and the frame counter (new sequence)."""
        self.tracks.reset()
        self.frame = 0
        self.association_log: list[dict[str, Any]] = []
        if self.cmc is not None:
            self.cmc.reset()

    # -- cost of one association stage -----------------------------------------------------
    def _cost(self, trk: np.ndarray, dets: Detections, *, stage: str, use_appearance: bool,
              fuse_score: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """Cost matrix (tracks x dets) with gated pairs at ``inf``; also IoU, app distance, gate."""
        cfg = self.cfg
        t_boxes = self.tracks.xyxy(trk)
        iou_cost = matching.iou_distance(t_boxes, dets.boxes)
        cost = matching.fuse_score(iou_cost, dets.scores) if fuse_score else iou_cost.copy()
        app = None
        if use_appearance and dets.embeddings is not None and cfg.appearance.weight > 0:
            app = matching.cosine_distance(self.tracks.embedding[trk], dets.embeddings)
            app[~self.tracks.has_embedding[trk]] = 0.0       # no gallery yet: IoU decides
            cost = matching.fuse_cost(cost, app, cfg.appearance.weight, cfg.appearance.max_distance)
        gate = np.ones(cost.shape, bool)
        if cfg.gating == "mahalanobis":
            d2 = self.kf.gating_distance(self.tracks.mean[trk], self.tracks.cov[trk],
                                         xyxy_to_cxcywh(dets.boxes))
            gate = d2 <= cfg.mahalanobis_gate
        elif cfg.gating == "iou":
            gate = iou_cost < 1.0
        elif cfg.gating == "centre":
            gate = matching.centre_gate(t_boxes, dets.boxes, cfg.centre_gate)
        if cfg.per_class:
            gate &= self.tracks.cls[trk][:, None] == dets.classes[None, :]
        cost[~gate] = np.inf
        return cost, 1.0 - iou_cost, app, gate

    def _associate(self, trk: np.ndarray, dets: Detections, det_idx: np.ndarray, *, stage: str,
                   max_cost: float, use_appearance: bool, fuse_score: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Match tracks ``trk`` to detections ``det_idx``; returns (matches as (track row, det
        index) pairs, unmatched track rows, unmatched det indices) and applies the Kalman update."""
        if len(trk) == 0 or len(det_idx) == 0:
            return np.zeros((0, 2), np.int64), trk, det_idx
        sub = dets.select(det_idx)
        cost, iou, app, gate = self._cost(trk, sub, stage=stage, use_appearance=use_appearance,
                                          fuse_score=fuse_score)
        pairs, um_t, um_d = matching.linear_assignment(cost, max_cost)
        if self.cfg.log_associations:
            self._log(stage, trk, det_idx, pairs, cost, iou, app, gate)
        rows, cols = trk[pairs[:, 0]], det_idx[pairs[:, 1]]
        if len(rows):
            self.tracks.mean[rows], self.tracks.cov[rows] = self.kf.update(
                self.tracks.mean[rows], self.tracks.cov[rows], xyxy_to_cxcywh(dets.boxes[cols]))
            self.tracks.score[rows] = dets.scores[cols]
            self.tracks.mark_matched(rows, self.cfg.min_hits)
            if dets.embeddings is not None and use_appearance:  # never from low-score (occluded) crops
                self.tracks.update_embedding(rows, dets.embeddings[cols], self.cfg.appearance.ema_momentum)
        return np.stack([rows, cols], axis=1), trk[um_t], det_idx[um_d]

    def _log(self, stage, trk, det_idx, pairs, cost, iou, app, gate) -> None:
        matched = dict(zip(pairs[:, 0].tolist(), pairs[:, 1].tolist()))
        for i, t in enumerate(trk):
            j = matched.get(i)
            if j is None:  # report the best candidate that passed the gate, if any
                finite = np.where(np.isfinite(cost[i]))[0]
                j = int(finite[np.argmin(cost[i, finite])]) if len(finite) else -1
            self.association_log.append({
                "frame": self.frame, "stage": stage, "track_id": int(self.tracks.ids[t]),
                "det_index": int(det_idx[j]) if j >= 0 else -1,
                "iou": float(iou[i, j]) if j >= 0 else 0.0,
                "app_distance": float(app[i, j]) if (app is not None and j >= 0) else float("nan"),
                "cost": float(cost[i, j]) if j >= 0 else float("inf"),
                "matched": i in matched, "gated_out": int((~gate[i]).sum()),
            })

    # -- one frame ---------------------------------------------------------------------------
    def update(self, dets: Detections, image: np.ndarray | None = None) -> FrameTracks:
        """Advance one frame with its detections; returns the tracks to output for this frame."""
        cfg, T = self.cfg, self.tracks
        self.frame += 1
        if dets.embeddings is None and self.extractor is not None and image is not None and len(dets):
            dets.embeddings = self.extractor(image, dets.boxes)

        # Step 1: split detections by score (BYTE): high ones drive the first association,
        # low ones (often occluded objects) only extend existing tracks in the second.
        high = np.nonzero(dets.scores >= cfg.high_score)[0]
        low = np.nonzero((dets.scores >= cfg.low_score) & (dets.scores < cfg.high_score))[0]

        # Step 2: predict every track one frame ahead (lost tracks keep moving but stop growing),
        # then warp the predictions by the camera motion between the previous and this frame.
        if len(T):
            T.mean[T.state == LOST, 6:8] = 0.0
            T.mean, T.cov = self.kf.predict(T.mean, T.cov)
            T.since_update += 1
        if self.cmc is not None and image is not None:
            warp = self.cmc.estimate(image)
            if len(T):
                T.mean, T.cov = self.cmc.apply(warp, T.mean, T.cov)
        prior = {int(i): b for i, b in zip(T.ids, T.xyxy())}

        # Step 3: first association -- confirmed and lost tracks vs high-score detections,
        # IoU (score-fused) blended with appearance, gated, no match above match_max_cost.
        pool = np.nonzero((T.state == CONFIRMED) | (T.state == LOST))[0]
        m1, um_trk, um_high = self._associate(pool, dets, high, stage="first",
                                              max_cost=cfg.match_max_cost, use_appearance=True,
                                              fuse_score=cfg.fuse_score)

        # Step 4: second association -- tracks still unmatched that were tracked in the previous
        # frame (not lost) vs low-score detections, IoU only (appearance is unreliable there).
        m2 = np.zeros((0, 2), np.int64)
        if cfg.two_stage:
            r_trk = um_trk[T.state[um_trk] == CONFIRMED]
            m2, _, _ = self._associate(r_trk, dets, low, stage="second",
                                       max_cost=cfg.second_max_cost, use_appearance=False,
                                       fuse_score=False)

        # Step 5: tentative tracks (seen once) vs the high detections left over.
        tent = np.nonzero(T.state == TENTATIVE)[0]
        m3, _, um_high = self._associate(tent, dets, um_high, stage="tentative",
                                         max_cost=cfg.tentative_max_cost, use_appearance=True,
                                         fuse_score=cfg.fuse_score)

        # Step 6: tracks not matched in any stage: confirmed -> lost, tentative -> deleted.
        matched = np.concatenate([m1[:, 0], m2[:, 0], m3[:, 0]])
        missed = np.setdiff1d(np.arange(len(T)), matched)
        T.mark_missed(missed)

        # Step 7: start tracks from unmatched confident detections (confirmed at once on the
        # first frame, as ByteTrack does, else tentative).
        new = um_high[dets.scores[um_high] >= cfg.new_track_score]
        det_of = {int(T.ids[r]): int(c) for r, c in np.concatenate([m1, m2, m3])}
        if len(new):
            mean, cov = self.kf.initiate(xyxy_to_cxcywh(dets.boxes[new]))
            ids = T.add(mean, cov, dets.scores[new], dets.classes[new], self.frame,
                        confirmed=self.frame == 1 or cfg.min_hits <= 1,
                        embedding=None if dets.embeddings is None else dets.embeddings[new])
            det_of.update(zip(ids.tolist(), new.tolist()))

        # Step 8: delete tracks lost for longer than max_age (scaled by frame rate).
        T.expire(self.max_age)
        return self._output(det_of, prior)

    def _output(self, det_of: dict[int, int], prior: dict[int, np.ndarray]) -> FrameTracks:
        T = self.tracks
        show = (T.since_update == 0) & ((T.state == CONFIRMED) | (self.cfg.output_tentative & (T.state == TENTATIVE)))
        idx = np.nonzero(show)[0]
        rest = np.nonzero(~show)[0]
        boxes = T.xyxy(idx)
        ids = T.ids[idx]
        return FrameTracks(
            frame=self.frame, ids=ids.copy(), boxes=boxes, scores=T.score[idx].copy(),
            classes=T.cls[idx].copy(), states=[STATE_NAMES[s] for s in T.state[idx]],
            prior_boxes=np.array([prior.get(int(i), b) for i, b in zip(ids, boxes)]).reshape(-1, 4),
            det_index=np.array([det_of.get(int(i), -1) for i in ids], np.int64),
            others=(T.ids[rest].copy(), T.xyxy(rest), [STATE_NAMES[s] for s in T.state[rest]]),
        )
