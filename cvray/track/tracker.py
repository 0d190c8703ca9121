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
from cvray.track.track import CONFIRMED, DELETED, LOST, STATE_NAMES, TENTATIVE, TrackSet

__all__ = ["Tracker"]

log = logging.getLogger(__name__)

_EMPTY = np.zeros(0, np.int64)
_STATE_ARR = np.array(STATE_NAMES, dtype=object)

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
    def _cost(self, trk: np.ndarray, t_boxes: np.ndarray, dets: Detections, det_idx: np.ndarray, *,
              use_appearance: bool, fuse_score: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Cost matrix (tracks x dets) with gated pairs at ``inf``; also IoU, app distance, gate."""
        cfg = self.cfg
        d_boxes = dets.boxes[det_idx]
        iou = matching.box_iou(t_boxes, d_boxes)
        cost = 1.0 - iou * dets.scores[det_idx][None, :] if fuse_score else 1.0 - iou
        app = None
        if use_appearance and dets.embeddings is not None and cfg.appearance.weight > 0:
            app = matching.cosine_distance(self.tracks.embedding[trk], dets.embeddings[det_idx])
            app[~self.tracks.has_embedding[trk]] = 0.0       # no gallery yet: IoU decides
            if cfg.appearance.fusion == "min":
                cost = matching.min_fuse_cost(cost, 1.0 - iou, app, cfg.appearance.max_distance,
                                              cfg.appearance.proximity)
            else:
                cost = matching.fuse_cost(cost, app, cfg.appearance.weight, cfg.appearance.max_distance)
        gate = None
        if cfg.gating == "mahalanobis":
            d2 = self.kf.gating_distance(self.tracks.mean[trk], self.tracks.cov[trk], xyxy_to_cxcywh(d_boxes))
            gate = d2 <= cfg.mahalanobis_gate
        elif cfg.gating == "iou" and not cfg.per_class:
            cost[iou <= 0.0] = np.inf                         # no overlap, no match
        elif cfg.gating == "iou":
            gate = iou > 0.0
        elif cfg.gating == "centre":
            gate = matching.centre_gate(t_boxes, d_boxes, cfg.centre_gate)
        if cfg.per_class:
            same = self.tracks.cls[trk][:, None] == dets.classes[det_idx][None, :]
            gate = same if gate is None else gate & same
        if gate is not None:
            cost[~gate] = np.inf
        return cost, iou, app, gate

    def _associate(self, trk: np.ndarray, boxes: np.ndarray, dets: Detections, det_idx: np.ndarray, *,
                   stage: str, max_cost: float, use_appearance: bool, fuse_score: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Match track rows ``trk`` (predicted boxes ``boxes[trk]``) to detections ``det_idx``.

        Returns matched track rows, matched detection indices, unmatched track rows and unmatched
        detection indices. The Kalman update happens once per frame, after all stages."""
        if len(trk) == 0 or len(det_idx) == 0:
            return _EMPTY, _EMPTY, trk, det_idx
        cost, iou, app, gate = self._cost(trk, boxes[trk], dets, det_idx, use_appearance=use_appearance,
                                          fuse_score=fuse_score)
        r, c, um_t, um_d = matching.linear_assignment(cost, max_cost, return_arrays=True)
        if self.cfg.log_associations:
            # gated out = any pair made impossible (motion gate, class, appearance distance)
            self._log(stage, trk, det_idx, np.stack([r, c], axis=1), cost, iou, app, np.isfinite(cost))
        return trk[r], det_idx[c], trk[um_t], det_idx[um_d]

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
        scores = dets.scores
        high = np.nonzero(scores >= cfg.high_score)[0]
        low = np.nonzero((scores >= cfg.low_score) & (scores < cfg.high_score))[0]

        # Step 2: predict every track one frame ahead (lost tracks keep moving but stop growing),
        # then warp the predictions by the camera motion between the previous and this frame.
        n_old = len(T)
        if n_old:
            T.mean[T.state == LOST, 6:8] = 0.0
            T.mean, T.cov = self.kf.predict(T.mean, T.cov)
            T.since_update += 1
        if self.cmc is not None and image is not None:
            warp = self.cmc.estimate(image)
            if n_old:
                T.mean, T.cov = self.cmc.apply(warp, T.mean, T.cov)
        prior = T.xyxy()

        # Step 3: first association -- confirmed and lost tracks vs high-score detections,
        # IoU (score-fused) blended with appearance, gated, no match above match_max_cost.
        state = T.state
        pool = np.nonzero(state != TENTATIVE)[0]
        r1, c1, um_trk, um_high = self._associate(pool, prior, dets, high, stage="first",
                                                  max_cost=cfg.match_max_cost, use_appearance=True,
                                                  fuse_score=cfg.fuse_score)

        # Step 4: second association -- tracks still unmatched that were tracked in the previous
        # frame (and lost ones with second_includes_lost) vs low-score detections, IoU only
        # (appearance is unreliable on these mostly occluded objects).
        r2 = c2 = _EMPTY
        if cfg.two_stage and len(low):
            r_trk = um_trk if cfg.second_includes_lost else um_trk[state[um_trk] == CONFIRMED]
            r2, c2, _, _ = self._associate(r_trk, prior, dets, low, stage="second",
                                           max_cost=cfg.second_max_cost, use_appearance=False,
                                           fuse_score=False)

        # Step 5: tentative tracks (seen once) vs the high detections left over.
        tent = np.nonzero(state == TENTATIVE)[0]
        r3, c3, _, um_high = self._associate(tent, prior, dets, um_high, stage="tentative",
                                             max_cost=cfg.tentative_max_cost, use_appearance=True,
                                             fuse_score=cfg.fuse_score)

        # Step 6: Kalman update of every matched track with its detection (stages are disjoint,
        # so one batched update equals updating after each stage); gallery EMA from high-score
        # matches only; tracks not matched in any stage: confirmed -> lost, tentative -> deleted.
        rows = np.concatenate([r1, r2, r3])
        cols = np.concatenate([c1, c2, c3])
        if len(rows):
            T.mean[rows], T.cov[rows] = self.kf.update(T.mean[rows], T.cov[rows],
                                                       xyxy_to_cxcywh(dets.boxes[cols]))
            T.score[rows] = scores[cols]
            T.mark_matched(rows, cfg.min_hits)
            if dets.embeddings is not None:
                hr, hc = np.concatenate([r1, r3]), np.concatenate([c1, c3])
                T.update_embedding(hr, dets.embeddings[hc], cfg.appearance.ema_momentum)
        missed = np.ones(n_old, bool)
        missed[rows] = False
        T.mark_missed(np.nonzero(missed)[0])
        det_of = np.full(n_old, -1, np.int64)
        det_of[rows] = cols

        # Step 7: start tracks from unmatched confident detections (confirmed at once on the
        # first frame, as ByteTrack does, else tentative).
        new = um_high[scores[um_high] >= cfg.new_track_score]
        if len(new):
            mean, cov = self.kf.initiate(xyxy_to_cxcywh(dets.boxes[new]))
            T.add(mean, cov, scores[new], dets.classes[new], self.frame,
                  confirmed=self.frame == 1 or cfg.min_hits <= 1,
                  embedding=None if dets.embeddings is None else dets.embeddings[new])
            det_of = np.concatenate([det_of, new])
            prior = np.concatenate([prior, T.xyxy(slice(n_old, None))])
        out = self._output(det_of, prior, dets.boxes)

        # Step 8: delete tracks lost for longer than max_age (scaled by frame rate).
        T.expire(self.max_age)
        return out

    def _output(self, det_of: np.ndarray, prior: np.ndarray, det_boxes: np.ndarray) -> FrameTracks:
        T = self.tracks
        show = (T.since_update == 0) & (T.state == CONFIRMED)
        if self.cfg.output_tentative:
            show |= (T.since_update == 0) & (T.state == TENTATIVE)
        show &= T.state != DELETED
        idx = np.nonzero(show)[0]
        rest = np.nonzero(~show & (T.state != DELETED))[0]
        boxes = det_boxes[det_of[idx]] if self.cfg.output_box == "detection" else T.xyxy(idx)
        return FrameTracks(
            frame=self.frame, ids=T.ids[idx], boxes=boxes, scores=T.score[idx],
            classes=T.cls[idx], states=_STATE_ARR[T.state[idx]].tolist(),
            prior_boxes=prior[idx], det_index=det_of[idx],
            others=(T.ids[rest], prior[rest], _STATE_ARR[T.state[rest]].tolist()),
        )
