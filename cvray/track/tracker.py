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
import math
from typing import Any, Callable

import numpy as np

from cvray.track import matching
from cvray.track.config import TrackConfig
from cvray.track.kalman import AxisKalmanFilter, KalmanFilter, cxcywh_to_xyxy, xyxy_to_cxcywh
from cvray.track.records import Detections, FrameTracks
from cvray.track.scores import ScoreModel
from cvray.track.track import CLS, CONFIRMED, ID, LOST, SINCE, STATE, STATE_NAMES, TENTATIVE, TrackSet

__all__ = ["Tracker"]

log = logging.getLogger(__name__)

_EMPTY = np.zeros(0, np.int64)
_STATE_ARR = np.array(STATE_NAMES, dtype=object)
_SINCE_STEP = np.eye(6, dtype=np.int64)[SINCE]          # + 1 frame since the last match
#: xyxy box difference -> centre difference (cx, cy); (dx, dy) -> the same shift of x1, y1, x2, y2
_CENTRE_DIFF = np.array([[0.5, 0.0], [0.0, 0.5], [0.5, 0.0], [0.0, 0.5]])
_SHIFT_XYXY = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])

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
        # per-coordinate filter (same numbers, far fewer operations) unless a camera-motion warp
        # will couple the coordinates
        kf_cls = KalmanFilter if cmc is not None else AxisKalmanFilter
        self.kf = kf_cls(self.cfg.kalman.std_weight_position, self.cfg.kalman_velocity_std(self.frame_rate))
        self.extractor = extractor
        self.cmc = cmc
        self.tracks = TrackSet(state_dim=self.kf.state_dim)
        self.score_model = ScoreModel(self.cfg.scores)
        # the default association when no appearance is in play: IoU gate, no class gate, no log
        self._plain = (self.cfg.gating == "iou" and not self.cfg.per_class
                       and not self.cfg.log_associations)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and restart ids and the frame counter (new sequence)."""
        self.tracks.reset()
        self.score_model.reset()
        self.frame = 0
        self.association_log: list[dict[str, Any]] = []
        if self.cmc is not None:
            self.cmc.reset()

    def fit_scores(self, scores: np.ndarray) -> None:
        """Rank this sequence's detections against all of its scores (``track.scores``; see
        :mod:`cvray.track.scores`). Without it a stream is ranked against the scores seen so far."""
        self.score_model.fit(scores)

    # -- one association stage -------------------------------------------------------------
    def _associate(self, trk: np.ndarray, det_idx: np.ndarray, sim_all: np.ndarray, iou_all: np.ndarray,
                   prior: np.ndarray, dets: Detections, *, stage: str, max_cost: float,
                   use_appearance: bool, fuse_score: bool) -> tuple[np.ndarray, np.ndarray]:
        """Match track rows ``trk`` to detections ``det_idx``; returns the matched pairs (track
        rows, detection indices).

        Cost = ``1 - IoU`` (``1 - IoU * score`` with ``fuse_score``; ``sim_all`` holds the frame's
        ``IoU * score``, ``iou_all`` its IoU, all tracks x all detections), blended with the
        appearance distance; pairs failing the gate are ``inf``; no pair above ``max_cost`` is
        matched. The Kalman update happens once per frame, after all stages."""
        if len(trk) == 0 or len(det_idx) == 0:
            return _EMPTY, _EMPTY
        cfg = self.cfg
        sim = (sim_all if fuse_score else iou_all)[trk][:, det_idx]
        app_on = (use_appearance and dets.embeddings is not None and cfg.appearance.weight > 0
                  and self.tracks.embedding is not None)
        if self._plain and max_cost < 1.0 and not app_on:
            # IoU alone (no embeddings), IoU gate: a pair without overlap has cost 1 > max_cost
            # already, so the matching is on the similarity directly (valid: sim >= 1 - max_cost)
            r, c = matching.solve_similarity(sim, 1.0 - max_cost)
            return trk[r], det_idx[c]
        cost = 1.0 - sim
        iou = iou_all[trk][:, det_idx] if fuse_score else sim
        app = None
        if app_on:
            app = matching.cosine_distance(self.tracks.embedding[trk], dets.embeddings[det_idx])
            app[~self.tracks.has_embedding[trk]] = 0.0       # no gallery yet: IoU decides
            if cfg.appearance.fusion == "min":
                cost = matching.min_fuse_cost(cost, 1.0 - iou, app, cfg.appearance.max_distance,
                                              cfg.appearance.proximity)
            else:
                cost = matching.fuse_cost(cost, app, cfg.appearance.weight, cfg.appearance.max_distance)
        gate = None
        if cfg.gating == "mahalanobis":
            d2 = self.kf.gating_state(self.tracks.kf_state[trk], xyxy_to_cxcywh(dets.boxes[det_idx]))
            gate = d2 <= cfg.mahalanobis_gate
        elif cfg.gating == "iou":
            gate = iou > 0.0                                  # no overlap, no match
        elif cfg.gating == "centre":
            gate = matching.centre_gate(prior[trk], dets.boxes[det_idx], cfg.centre_gate)
        if cfg.per_class:
            same = self.tracks.cls[trk][:, None] == dets.classes[det_idx][None, :]
            gate = same if gate is None else gate & same
        if gate is not None:
            cost[~gate] = np.inf
        r, c = matching.solve(cost, max_cost)
        if cfg.log_associations:
            # gated out = any pair made impossible (motion gate, class, appearance distance)
            self._log(stage, trk, det_idx, np.stack([r, c], axis=1), cost, iou, app, np.isfinite(cost))
        return trk[r], det_idx[c]

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
        """Advance one frame with its detections; returns the tracks to output for this frame.

        Written for a low count of numpy calls per frame (each costs about a microsecond whatever
        the array size, which is what a frame with a handful of objects pays): one IoU matrix for
        all stages, one Kalman gather/update/scatter, one lifecycle table lookup."""
        cfg, T, kf = self.cfg, self.tracks, self.kf
        self.frame += 1
        if dets.embeddings is None and self.extractor is not None and image is not None and len(dets):
            dets.embeddings = self.extractor(image, dets.boxes)
        # scores on the tracker's [0, 1] scale (track.scores); outputs keep the detector's own
        scores, boxes = self.score_model(dets.scores), dets.boxes

        # Step 1: predict every track one frame ahead (lost tracks keep moving but stop growing),
        # then warp the predictions by the camera motion between the previous and this frame.
        # (TrackSet.step zeroes the size velocity of a track when it becomes lost)
        n_old = len(T)
        info = T.info
        state = info[:, STATE]
        if n_old:
            T.kf_state = kf.predict_state(T.kf_state)
            # a new array, not in place: the previous frame's output may still read the old one
            T.info = info = info + _SINCE_STEP
        if self.cmc is not None and image is not None:
            warp = self.cmc.estimate(image)
            if n_old:
                T.kf_state = kf.pack(*self.cmc.apply(warp, *kf.unpack(T.kf_state)))
        prior = T.xyxy()
        if cfg.iou_buffer > 0:
            # C-BIoU (Yang et al. 2023): both boxes widened by iou_buffer of their size on each
            # side, so a fast object still overlaps its prediction
            iou_all = matching.box_iou(matching.buffer_boxes(prior, cfg.iou_buffer),
                                       matching.buffer_boxes(boxes, cfg.iou_buffer))
        else:
            iou_all = matching.box_iou(prior, boxes)
        sim_all = iou_all * scores if cfg.fuse_score else iou_all

        # Step 2: split detections by score (BYTE): high ones drive the first association,
        # low ones (often occluded objects) only extend existing tracks in the second.
        high = scores >= cfg.high_score
        tentative = state == TENTATIVE

        # Step 3: first association -- confirmed and lost tracks vs high-score detections,
        # IoU (score-fused) blended with appearance, gated, no match above match_max_cost.
        r1, c1 = self._associate((~tentative).nonzero()[0], high.nonzero()[0], sim_all, iou_all, prior,
                                 dets, stage="first", max_cost=cfg.match_max_cost, use_appearance=True,
                                 fuse_score=cfg.fuse_score)

        # Step 3b (ego_shift): a camera that moves (pans, shakes, turns) moves every box alike, so
        # the median innovation of the first stage's matches is the image shift the predictions
        # missed; where it is significant, the tracks left unmatched are moved by it (state and
        # this frame's prior box) and the confirmed/lost ones among them try the leftover high
        # detections again before the later stages.
        if cfg.ego_shift and len(r1) >= cfg.ego_min_matches and n_old > len(r1):
            r1, c1, prior, iou_all, sim_all = self._ego_shift(r1, c1, prior, iou_all, boxes, scores, high,
                                                              tentative, dets)

        # Step 4: second association -- tracks still unmatched that were tracked in the previous
        # frame (and lost ones with second_includes_lost) vs low-score detections, IoU only
        # (appearance is unreliable on these mostly occluded objects).
        r2 = c2 = _EMPTY
        if cfg.two_stage and n_old > len(r1):
            low_idx = ((scores >= cfg.low_score) & ~high).nonzero()[0]
            if len(low_idx):
                free = ~tentative if cfg.second_includes_lost else state == CONFIRMED
                free[r1] = False
                r2, c2 = self._associate(free.nonzero()[0], low_idx, sim_all, iou_all, prior, dets,
                                         stage="second", max_cost=cfg.second_max_cost,
                                         use_appearance=False, fuse_score=False)

        # Step 4b (OC-SORT's observation-centric recovery): tracks still unmatched vs the high
        # detections left over, by IoU with the track's *last observed* box instead of its
        # prediction (a prediction that drifted during an occlusion no longer overlaps).
        det_free = high
        det_free[c1] = False
        r4 = c4 = _EMPTY
        if cfg.ocr and n_old > len(r1) + len(r2) and det_free.any():
            left = ~tentative
            left[r1] = False
            left[r2] = False
            trk4, det4 = left.nonzero()[0], det_free.nonzero()[0]
            if len(trk4):
                iou4 = matching.box_iou(cxcywh_to_xyxy(T.obs[trk4]), boxes[det4])
                rr, cc = matching.solve_similarity(iou4, 1.0 - cfg.ocr_max_cost)
                r4, c4 = trk4[rr], det4[cc]
                det_free[c4] = False
                r1, c1 = np.concatenate([r1, r4]), np.concatenate([c1, c4])

        # Step 5: tentative tracks (seen once) vs the high detections left over.
        r3 = c3 = _EMPTY
        tent_idx = tentative.nonzero()[0]
        if len(tent_idx):
            r3, c3 = self._associate(tent_idx, det_free.nonzero()[0], sim_all, iou_all,
                                     prior, dets, stage="tentative", max_cost=cfg.tentative_max_cost,
                                     use_appearance=True, fuse_score=cfg.fuse_score)
            det_free[c3] = False

        # Step 6: Kalman update of every matched track with its detection (stages are disjoint,
        # so one batched update equals updating after each stage); gallery EMA from high-score
        # matches only; then the lifecycle of all tracks (confirm, lose, delete after max_age
        # frames lost, scaled by frame rate).
        rows = np.concatenate([r1, r2, r3])
        cols = np.concatenate([c1, c2, c3])
        det_of = np.empty(n_old, np.int64)
        det_of.fill(-1)
        if len(rows):
            z = xyxy_to_cxcywh(boxes[cols])
            # NSA Kalman (Du et al. 2023): measurement noise scaled by (1 - confidence)
            r_scale = (np.maximum(1.0 - scores[cols], cfg.kalman.nsa_floor)
                       if cfg.kalman.nsa else None)
            new_state = kf.update_state(T.kf_state[rows], z, r_scale)
            if cfg.oru:
                gap = info[rows, SINCE]
                back = (gap > 1).nonzero()[0]
                if len(back):
                    new_state[back] = self._reupdate(T.kf_last[rows[back]], T.obs[rows[back]], z[back],
                                                     gap[back])
                T.kf_last[rows] = new_state
            T.kf_state[rows] = new_state
            T.obs[rows] = z
            T.score[rows] = dets.scores[cols]
            det_of[rows] = cols
            if dets.embeddings is not None:
                hr, hc = np.concatenate([r1, r3]), np.concatenate([c1, c3])
                T.update_embedding(hr, dets.embeddings[hc], cfg.appearance.ema_momentum)
        keep = T.step(rows, cfg.min_hits, self.max_age, age_per_hit=cfg.age_per_hit,
                      freeze_lost=cfg.freeze_lost)
        if keep is not None:
            det_of, prior = det_of[keep], prior[keep]

        # Step 7: start tracks from unmatched confident detections (confirmed at once on the
        # first frame, as ByteTrack does, else tentative).
        new = (det_free & (scores >= cfg.new_track_score)).nonzero()[0]
        if len(new):
            n_kept = len(T)
            z_new = xyxy_to_cxcywh(boxes[new])
            T.add(kf.initiate_state(z_new), dets.scores[new], dets.classes[new],
                  self.frame, confirmed=(self.frame == 1 or cfg.min_hits <= 1
                                         or (cfg.confirm_score is not None
                                             and scores[new] >= cfg.confirm_score)),
                  embedding=None if dets.embeddings is None else dets.embeddings[new], obs=z_new)
            det_of = np.concatenate([det_of, new])
            prior = np.concatenate([prior, T.xyxy(slice(n_kept, None))])
        return self._output(det_of, prior, boxes)

    def _ego_shift(self, r1, c1, prior, iou_all, boxes, scores, high, tentative, dets):
        """Step 3b: estimate the frame's global image shift from the first stage's matches (median
        of detection centre minus predicted centre, per axis, kept where it exceeds
        ``ego_significance`` robust standard errors), move the unmatched tracks by it and match the
        confirmed/lost ones among them against the leftover high detections (first-stage rules).
        Returns the updated first-stage pairs, prior boxes and IoU / similarity matrices.
        Written for few numpy calls (medians by one sort each: ``np.median`` alone costs ~20 us)."""
        cfg, T = self.cfg, self.tracks
        n = len(r1)
        lo, hi = (n - 1) // 2, n // 2
        innov = (boxes[c1] - prior[r1]) @ _CENTRE_DIFF                     # (n, 2) centre moves
        srt = np.sort(innov, axis=0)
        shift = (srt[lo] + srt[hi]) * 0.5
        dev = np.abs(innov - shift)
        dev.sort(axis=0)
        # robust std = 1.4826 MAD; standard error of the median ~ std / sqrt(n)
        shift *= np.abs(shift) * math.sqrt(n) > (cfg.ego_significance * 0.7413) * (dev[lo] + dev[hi])
        if not shift.any():
            return r1, c1, prior, iou_all, iou_all * scores if cfg.fuse_score else iou_all
        unm = np.ones(len(T), bool)
        unm[r1] = False
        move = unm[:, None] * shift                                         # (N, 2): 0 for matched rows
        T.kf_state[:, :2] += move
        prior = prior + move @ _SHIFT_XYXY                                  # matched rows unchanged
        if cfg.iou_buffer > 0:
            iou_all = matching.box_iou(matching.buffer_boxes(prior, cfg.iou_buffer),
                                       matching.buffer_boxes(boxes, cfg.iou_buffer))
        else:
            iou_all = matching.box_iou(prior, boxes)
        sim_all = iou_all * scores if cfg.fuse_score else iou_all
        free = high.copy()
        free[c1] = False
        trk = (unm & ~tentative).nonzero()[0]
        if len(trk) and free.any():
            ra, ca = self._associate(trk, free.nonzero()[0], sim_all, iou_all, prior, dets, stage="first",
                                     max_cost=cfg.match_max_cost, use_appearance=True,
                                     fuse_score=cfg.fuse_score)
            if len(ra):
                r1, c1 = np.concatenate([r1, ra]), np.concatenate([c1, ca])
        return r1, c1, prior, iou_all, sim_all

    def _reupdate(self, state: np.ndarray, z0: np.ndarray, z1: np.ndarray, gap: np.ndarray) -> np.ndarray:
        """OC-SORT's observation-centric re-update: a track re-found after ``gap`` frames is rolled
        forward again from its state at the last match (``state``, observation ``z0``), updated
        with a virtual observation on the straight line to the new one ``z1`` in every missed
        frame, so the velocity that drifted during the occlusion is replaced by the observed one."""
        kf, s = self.kf, state.copy()
        for k in range(1, int(gap.max()) + 1):
            act = (gap >= k).nonzero()[0]
            zk = z0[act] + (z1[act] - z0[act]) * (k / gap[act])[:, None]
            s[act] = kf.update_state(kf.predict_state(s[act]), zk)
        return s

    def _output(self, det_of: np.ndarray, prior: np.ndarray, det_boxes: np.ndarray) -> FrameTracks:
        T = self.tracks
        info = T.info
        state = info[:, STATE]
        if self.cfg.output_tentative:
            show = (info[:, SINCE] == 0) & (state <= CONFIRMED)     # tentative or confirmed
        else:
            show = (info[:, SINCE] == 0) & (state == CONFIRMED)
        idx = show.nonzero()[0]
        sel = info[idx]
        boxes = det_boxes[det_of[idx]] if self.cfg.output_box == "detection" else T.xyxy(idx)
        states = (_STATE_ARR[sel[:, STATE]].tolist() if self.cfg.output_tentative
                  else ["confirmed"] * len(idx))

        def others() -> tuple[np.ndarray, np.ndarray, list[str]]:
            # ``info`` is this frame's array: the next frame's prediction makes a new one
            rest = (~show).nonzero()[0]
            return info[rest, ID], prior[rest], _STATE_ARR[info[rest, STATE]].tolist()

        return FrameTracks(frame=self.frame, ids=sel[:, ID], boxes=boxes, scores=T.score[idx],
                           classes=sel[:, CLS], states=states, prior_boxes=prior[idx],
                           det_index=det_of[idx], _others=others)
