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
from cvray.track.kalman import CXCYWH_TO_XYXY, AxisKalmanFilter, KalmanFilter, cxcywh_to_xyxy, xyxy_to_cxcywh
from cvray.track.records import Detections, FrameTracks
from cvray.track.scores import ScoreModel
from cvray.track.track import CLS, CONFIRMED, ID, LOST, SINCE, STATE, STATE_NAMES, TENTATIVE, TrackSet

__all__ = ["Tracker"]

log = logging.getLogger(__name__)

_EMPTY = np.zeros(0, np.int64)
_STATE_ARR = np.array(STATE_NAMES, dtype=object)
_SINCE_STEP = np.eye(6, dtype=np.int64)[SINCE]          # + 1 frame since the last match
#: row indices 0, 1, ... and -1s (slices of them: no per-frame arange / fill)
_ROWS = np.arange(1 << 16)
_MINUS1 = np.full(4096, -1, np.int64)
#: _SINCE_STEP on as many rows as needed (a slice of it adds without broadcasting: cheaper for a
#: handful of tracks); grown on demand
_SINCE_ROWS = np.tile(_SINCE_STEP, (256, 1))
#: xyxy box difference -> centre difference (cx, cy)
_CENTRE_DIFF = np.array([[0.5, 0.0], [0.0, 0.5], [0.5, 0.0], [0.0, 0.5]])
#: ego_shift: medians on Python floats up to this many matches (cheaper than numpy calls), numpy above
_EGO_PY_MAX = 40
#: frames with at most this many (track, detection) pairs finish the stages after an ego shift on their
#: candidate pairs in Python (Tracker._after_shift_small); larger ones on the matrices (numpy calls cost
#: less per pair there). At most matching._FAST_MAX, so that every stage's sub-matrix would take the
#: solver's fast path in the dense path too.
_SMALL_MAX = 1024
_TINY = np.finfo(np.float64).tiny
#: _after_shift_small moves up to this many tracks element by element (fewer calls), more by _ego_move
_EGO_PY_ROWS = 8
#: TrackSet.step_rows (the lifecycle on Python ints) up to this many tracks, TrackSet.step above
_STEP_PY_MAX = 24

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
        # ... and every stage on plain IoU (no score fusion, buffer, OC-SORT stages, pixels): a small
        # frame may then finish its stages after an ego shift on candidate pairs (_after_shift_small)
        c = self.cfg
        # the last observations (TrackSet.obs) are read by the OC-SORT stages only
        self._keep_obs = c.ocr or c.oru
        self._small_ok = (self._plain and not c.fuse_score and c.iou_buffer == 0 and not c.ocr and not c.oru
                          and cmc is None and extractor is None
                          and max(c.match_max_cost, c.second_max_cost, c.tentative_max_cost) < 1.0)
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
        app_on = (use_appearance and dets.embeddings is not None and cfg.appearance.weight > 0
                  and self.tracks.embedding is not None)
        if self._plain and max_cost < 1.0 and not app_on:
            # IoU alone (no embeddings), IoU gate: a pair without overlap has cost 1 > max_cost
            # already, so the matching is on the similarity directly (valid: sim >= 1 - max_cost).
            # All rows (columns) taking part, as in most first stages: no gather, indices as is.
            sim = sim_all if fuse_score else iou_all
            all_r, all_c = len(trk) == sim.shape[0], len(det_idx) == sim.shape[1]
            if not all_r:
                sim = sim.take(trk, axis=0)        # (take: a third of a fancy index's cost)
            if not all_c:
                sim = sim.take(det_idx, axis=1)
            r, c = matching.solve_similarity(sim, 1.0 - max_cost)
            return (r if all_r else trk[r]), (c if all_c else det_idx[c])
        sim = (sim_all if fuse_score else iou_all)[trk][:, det_idx]
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
        # a handful of tracks: the lifecycle on Python ints (TrackSet.step_rows), which also adds
        # the frame since the last match (nothing before it reads that column without ORU)
        py_step = (n_old <= _STEP_PY_MAX and (cfg.age_per_hit == 0 or cfg.age_per_hit == 1.0)
                   and not cfg.oru)
        if n_old:
            T.kf_state = kf.predict_state(T.kf_state)
            if not py_step:
                # a new array, not in place: the previous frame's output may still read the old one
                global _SINCE_ROWS
                if n_old > len(_SINCE_ROWS):
                    _SINCE_ROWS = np.tile(_SINCE_STEP, (2 * n_old, 1))
                T.info = info = info + _SINCE_ROWS[:n_old]
        if self.cmc is not None and image is not None:
            warp = self.cmc.estimate(image)
            if n_old:
                T.kf_state = kf.pack(*self.cmc.apply(warp, *kf.unpack(T.kf_state)))
        prior = T.kf_state[:, :4] @ CXCYWH_TO_XYXY                  # T.xyxy(), inline
        # Step 2: split detections by score (BYTE): high ones drive the first association,
        # low ones (often occluded objects) only extend existing tracks in the second.
        high = scores >= cfg.high_score
        tentative = state == TENTATIVE
        det_area = None
        if cfg.iou_buffer > 0:
            # C-BIoU (Yang et al. 2023): both boxes widened by iou_buffer of their size on each
            # side, so a fast object still overlaps its prediction
            iou_all = matching.box_iou(matching.buffer_boxes(prior, cfg.iou_buffer),
                                       matching.buffer_boxes(boxes, cfg.iou_buffer))
        else:
            if n_old * len(boxes) > _SMALL_MAX:
                det_area = matching.box_area(boxes)      # kept for the ego-shift recompute
            iou_all = matching.box_iou(prior, boxes, det_area)
        sim_all = iou_all * scores if cfg.fuse_score else iou_all
        rows, cols, new, prior, hr, hc = self._associate_dense(
            iou_all, sim_all, prior, boxes, scores, high, tentative, state, det_area, dets)

        # Step 6: Kalman update of every matched track with its detection (stages are disjoint,
        # so one batched update equals updating after each stage); gallery EMA from high-score
        # matches only; then the lifecycle of all tracks (confirm, lose, delete after max_age
        # frames lost, scaled by frame rate).
        det_of = _MINUS1[:n_old].copy() if n_old <= len(_MINUS1) else np.full(n_old, -1, np.int64)
        if len(rows):
            # NSA Kalman (Du et al. 2023): measurement noise scaled by (1 - confidence)
            r_scale = (np.maximum(1.0 - scores.take(cols), cfg.kalman.nsa_floor)
                       if cfg.kalman.nsa else None)
            new_state, z = kf.update_boxes(T.kf_state.take(rows, axis=0), boxes.take(cols, axis=0), r_scale)
            if cfg.oru:
                gap = info[rows, SINCE]
                back = (gap > 1).nonzero()[0]
                if len(back):
                    new_state[back] = self._reupdate(T.kf_last[rows[back]], T.obs[rows[back]], z[back],
                                                     gap[back])
                T.kf_last[rows] = new_state
            T.kf_state[rows] = new_state
            if self._keep_obs:
                T.obs[rows] = z
            T.score[rows] = dets.scores.take(cols)
            det_of[rows] = cols
            if dets.embeddings is not None:
                T.update_embedding(hr, dets.embeddings[hc], cfg.appearance.ema_momentum)
        if py_step:
            # a handful of tracks: the lifecycle on Python ints (same table, same result)
            shown = []
            keep = T.step_rows(det_of.tolist(), cfg.min_hits, self.max_age, age_per_hit=cfg.age_per_hit,
                               freeze_lost=cfg.freeze_lost, shown=shown, show_tentative=cfg.output_tentative,
                               since_step=1)
        else:
            shown = None
            keep = T.step(rows, cfg.min_hits, self.max_age, age_per_hit=cfg.age_per_hit,
                          freeze_lost=cfg.freeze_lost, matched=(det_of >= 0).view(np.uint8))
        if keep is not None:
            det_of, prior = det_of[keep], prior.compress(keep, axis=0)

        # Step 7: start tracks from unmatched confident detections (confirmed at once on the
        # first frame, as ByteTrack does, else tentative).
        if len(new):
            n_kept = len(T)
            z_new = xyxy_to_cxcywh(boxes.take(new, axis=0))
            confirmed = (self.frame == 1 or cfg.min_hits <= 1
                         or (cfg.confirm_score is not None and scores[new] >= cfg.confirm_score))
            T.add(kf.initiate_state(z_new), dets.scores[new], dets.classes[new],
                  self.frame, confirmed=confirmed,
                  embedding=None if dets.embeddings is None else dets.embeddings[new], obs=z_new)
            if shown is not None:
                # the new rows shown: all with output_tentative, else the confirmed ones
                if cfg.output_tentative or confirmed is True:
                    shown.extend(range(n_kept, n_kept + len(new)))
                elif confirmed is not False:
                    shown.extend((n_kept + np.flatnonzero(confirmed)).tolist())
            det_of = np.concatenate([det_of, new])
            prior = np.concatenate([prior, T.xyxy(slice(n_kept, None))])
        return self._output(det_of, prior, boxes, shown)

    def _associate_dense(self, iou_all, sim_all, prior, boxes, scores, high, tentative, state, det_area, dets):
        """Steps 3-5 on the IoU / similarity matrices (any configuration). Returns the matched
        track rows and detection indices of all stages, the detections starting tracks, the
        prior boxes (moved by ego_shift) and the high-score pairs (gallery update)."""
        cfg, T = self.cfg, self.tracks
        n_old = len(T)

        # Step 3: first association -- confirmed and lost tracks vs high-score detections,
        # IoU (score-fused) blended with appearance, gated, no match above match_max_cost.
        # (no tentative track, as on most frames: all rows take part, no mask to invert)
        trk1 = (~tentative).nonzero()[0] if n_old > len(_ROWS) or tentative.any() else _ROWS[:n_old]
        r1, c1 = self._associate(trk1, high.nonzero()[0], sim_all, iou_all, prior,
                                 dets, stage="first", max_cost=cfg.match_max_cost, use_appearance=True,
                                 fuse_score=cfg.fuse_score)

        # Step 3b (ego_shift): a camera that moves (pans, shakes, turns) moves every box alike, so
        # the median innovation of the first stage's matches is the image shift the predictions
        # missed; where it is significant, the tracks left unmatched are moved by it (state and
        # this frame's prior box) and the confirmed/lost ones among them try the leftover high
        # detections again before the later stages.
        if cfg.ego_shift and len(r1) >= cfg.ego_min_matches and n_old > len(r1):
            shift = self._ego_estimate(r1, c1, prior, boxes)
            if shift is not None:
                if (self._small_ok and n_old * len(boxes) <= _SMALL_MAX and dets.embeddings is None
                        and T.embedding is None):
                    # a small frame: the moved tracks' few candidate pairs, in Python (same matches)
                    rows, cols, new = self._after_shift_small(r1, c1, shift, prior, boxes, scores, high,
                                                              tentative, state)
                    return rows, cols, new, prior, None, None
                r1, c1, prior, iou_all, sim_all = self._ego_shift(r1, c1, shift, prior, boxes, scores, high,
                                                                  tentative, dets, det_area)

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

        rows = np.concatenate([r1, r2, r3])
        cols = np.concatenate([c1, c2, c3])
        new = (det_free & (scores >= cfg.new_track_score)).nonzero()[0]
        if dets.embeddings is None:
            return rows, cols, new, prior, None, None
        return rows, cols, new, prior, np.concatenate([r1, r3]), np.concatenate([c1, c3])

    def _after_shift_small(self, r1, c1, shift, prior, boxes, scores, high, tentative, state):
        """Steps 3b (with a significant ``shift``) to 5 of a small frame with plain IoU stages, on
        candidate pairs in Python; returns ``(rows, cols, new)`` as :meth:`_associate_dense`.

        After the shift every stage left involves only moved tracks (the unmatched ones), whose
        IoU the dense path recomputes as a whole matrix. A handful of moved tracks have a handful
        of overlapping pairs: their IoU is :func:`matching.box_iou`'s formula on Python floats (the
        same IEEE operations in the same order, so the same numbers; a NaN box gives NaN there and
        here, and a NaN or left-out pair is never valid nor competing in any stage), and each
        stage's matching is decided on those pairs. numpy solves an assignment only where the dense
        path has a real one: when, within a stage, two valid pairs share a track or a detection
        (or a gain is exactly 0), the stage's sub-matrix is computed and solved exactly as the
        dense path would; with no competing pairs the valid pairs are what that solver returns
        (its fast path), in its order."""
        cfg = self.cfg
        n_old, n_det = len(prior), len(boxes)
        rr, cc = r1.tolist(), c1.tolist()                 # all stages' pairs, in order
        used_r, used_c = set(rr), set(cc)
        um = [i for i in range(n_old) if i not in used_r]
        ks = self.tracks.kf_state
        if len(um) <= _EGO_PY_ROWS and ks.flags.c_contiguous and prior.flags.c_contiguous:
            # a few rows: element by element through the arrays' buffers (Python float adds, the
            # same IEEE operations as _ego_move's, without its gathers and scatters)
            dx, dy = shift
            k, p = ks.data, prior.data
            moved = []
            for r in um:
                k[r, 0] += dx
                k[r, 1] += dy
                b = [p[r, 0] + dx, p[r, 1] + dy, p[r, 2] + dx, p[r, 3] + dy]
                p[r, 0], p[r, 1], p[r, 2], p[r, 3] = b
                moved.append(b)
        else:
            moved = self._ego_move(np.array(um, np.int64), shift, prior).tolist()
        free_cols = [j for j in range(n_det) if j not in used_c]
        cand: dict[int, list] = {}
        if free_cols:
            self._pair_ious(cand, um, free_cols, moved, boxes.tolist())
        high_l, tent_l = high.tolist(), tentative.tolist()
        high_free = {j for j in free_cols if high_l[j]}
        match = self._match_small
        # Step 3b: the moved confirmed/lost tracks vs the high detections left over
        pa = match(cand, [i for i in um if not tent_l[i]], high_free, 1.0 - cfg.match_max_cost,
                   prior, boxes)
        n_first = len(rr) + len(pa)
        for r, c in pa:
            rr.append(r)
            cc.append(c)
            used_r.add(r)
            high_free.discard(c)
        scores_l = scores.tolist()
        # Step 4: tracks still unmatched vs low detections
        if cfg.two_stage and n_old > n_first:
            low = {j for j in range(n_det) if not high_l[j] and scores_l[j] >= cfg.low_score}
            if low:
                if cfg.second_includes_lost:
                    free = [i for i in um if not tent_l[i] and i not in used_r]
                else:
                    st = state.tolist()
                    free = [i for i in um if st[i] == CONFIRMED and i not in used_r]
                for r, c in match(cand, free, low, 1.0 - cfg.second_max_cost, prior, boxes):
                    rr.append(r)
                    cc.append(c)
        # Step 5: tentative tracks vs the high detections left over
        tent = [i for i in um if tent_l[i]]               # (tentative rows are never matched in step 3)
        if tent:
            for r, c in match(cand, tent, high_free, 1.0 - cfg.tentative_max_cost, prior, boxes):
                rr.append(r)
                cc.append(c)
                high_free.discard(c)
        nts = cfg.new_track_score
        new = np.array([j for j in sorted(high_free) if scores_l[j] >= nts], np.int64) if high_free else _EMPTY
        if len(rr) == len(r1):                            # no pair after the first stage's: as they were
            return r1, c1, new
        return np.array(rr, np.int64), np.array(cc, np.int64), new

    @staticmethod
    def _pair_ious(cand, rows, cols, pl, bl) -> None:
        """Set ``cand[row]`` to the ``(col, IoU)`` of the pairs of ``rows`` x ``cols`` with IoU != 0
        (rows in order): box_iou's operations on Python floats (``pl[k]``: the xyxy list of
        ``rows[k]``, ``bl[col]``: of detection ``col``)."""
        # (``b if b < a else a`` is Python's ``min(a, b)`` and ``b if b > a else a`` its
        # ``max(a, b)``, NaN cases included, without a builtin call per pair)
        tiny = _TINY
        bz = [(c, *bl[c]) for c in cols]
        b_area: dict = {}
        for r, (ax1, ay1, ax2, ay2) in zip(rows, pl):
            aa = lst = None
            for c, bx1, by1, bx2, by2 in bz:
                iw = (bx2 if bx2 < ax2 else ax2) - (bx1 if bx1 > ax1 else ax1)
                if not iw > 0.0:
                    continue
                ih = (by2 if by2 < ay2 else ay2) - (by1 if by1 > ay1 else ay1)
                if not ih > 0.0:
                    continue
                if aa is None:
                    w, h = ax2 - ax1, ay2 - ay1
                    aa = (0.0 if 0.0 > w else w) * (0.0 if 0.0 > h else h)
                ab = b_area.get(c)
                if ab is None:
                    w, h = bx2 - bx1, by2 - by1
                    ab = b_area[c] = (0.0 if 0.0 > w else w) * (0.0 if 0.0 > h else h)
                inter = iw * ih
                union = (aa + ab) - inter
                v = inter / (tiny if union < tiny else union)
                if v != 0.0:
                    if lst is None:
                        lst = cand[r] = [(c, v)]
                    else:
                        lst.append((c, v))

    @staticmethod
    def _match_small(cand, rows, cols, min_sim, prior, boxes) -> list:
        """One plain IoU stage on candidate pairs: ``rows`` (ascending track rows) vs the detection
        set ``cols``, gain ``IoU - min_sim``; see :meth:`_after_shift_small`."""
        if not rows or not cols:
            return []
        pairs, seen = [], set()
        for r in rows:
            lst = cand.get(r)
            if not lst:
                continue
            hit = -1
            for c, v in lst:
                if c in cols:
                    g = v - min_sim
                    if g > 0.0:
                        if hit >= 0 or c in seen:
                            return Tracker._match_dense(rows, cols, min_sim, prior, boxes)
                        hit = c
                    elif g == 0.0:
                        return Tracker._match_dense(rows, cols, min_sim, prior, boxes)
            if hit >= 0:
                pairs.append((r, hit))
                seen.add(hit)
        return pairs

    @staticmethod
    def _match_dense(rows, cols, min_sim, prior, boxes) -> list:
        """The stage as the dense path solves it: its IoU sub-matrix (the same numbers as the
        frame's matrix: IoU is computed pair by pair), one assignment."""
        r_idx, c_idx = np.array(rows, np.int64), np.array(sorted(cols), np.int64)
        sim = matching.box_iou(prior.take(r_idx, axis=0), boxes.take(c_idx, axis=0))
        r, c = matching.solve_similarity(sim, min_sim)
        return list(zip(r_idx[r].tolist(), c_idx[c].tolist()))

    def _ego_shift(self, r1, c1, shift, prior, boxes, scores, high, tentative, dets, det_area=None):
        """Step 3b with a significant ``shift`` (:meth:`_ego_estimate`: the frame's global image
        shift from the first stage's matches): move the unmatched tracks by it and match the
        confirmed/lost ones among them against the leftover high detections (first-stage rules).
        Returns the updated first-stage pairs, prior boxes and IoU / similarity matrices."""
        cfg, T = self.cfg, self.tracks
        unm = np.ones(len(T), bool)
        unm[r1] = False
        um = unm.nonzero()[0]
        self._ego_move(um, shift, prior)
        if cfg.iou_buffer > 0:
            iou_all = matching.box_iou(matching.buffer_boxes(prior, cfg.iou_buffer),
                                       matching.buffer_boxes(boxes, cfg.iou_buffer))
        else:
            iou_all = matching.box_iou(prior, boxes, det_area)
        sim_all = iou_all * scores if cfg.fuse_score else iou_all
        free = high.copy()
        free[c1] = False
        trk = um[~tentative[um]]
        if len(trk) and free.any():
            ra, ca = self._associate(trk, free.nonzero()[0], sim_all, iou_all, prior, dets, stage="first",
                                     max_cost=cfg.match_max_cost, use_appearance=True,
                                     fuse_score=cfg.fuse_score)
            if len(ra):
                r1, c1 = np.concatenate([r1, ra]), np.concatenate([c1, ca])
        return r1, c1, prior, iou_all, sim_all

    def _ego_estimate(self, r1, c1, prior, boxes) -> tuple[float, float] | None:
        """The significant per-axis median innovation ``(dx, dy)`` of the first stage's matches
        (0 on an axis that is not significant), or None when neither axis is. With few matches the
        medians are taken on Python floats (the same IEEE operations as numpy's, so the same
        numbers, without a numpy call each), with many by one sort per axis."""
        n = len(r1)
        lo, hi = (n - 1) // 2, n // 2
        innov = (boxes.take(c1, axis=0) - prior.take(r1, axis=0)) @ _CENTRE_DIFF   # (n, 2) centre moves
        # robust std = 1.4826 MAD; standard error of the median ~ std / sqrt(n)
        thr, root_n = self.cfg.ego_significance * 0.7413, math.sqrt(n)
        if n <= _EGO_PY_MAX:
            shift = []
            for v in innov.T.tolist():
                srt = sorted(v)
                m = (srt[lo] + srt[hi]) * 0.5
                dev = sorted([abs(x - m) for x in v])
                shift.append(m if abs(m) * root_n > thr * (dev[lo] + dev[hi]) else 0.0)
            dx, dy = shift
            return (dx, dy) if (dx or dy) else None
        srt = np.sort(innov, axis=0)
        shift = (srt[lo] + srt[hi]) * 0.5
        dev = np.abs(innov - shift)
        dev.sort(axis=0)
        shift *= np.abs(shift) * root_n > thr * (dev[lo] + dev[hi])
        if not shift.any():
            return None
        dx, dy = shift.tolist()
        return dx, dy

    def _ego_move(self, um: np.ndarray, shift: tuple[float, float], prior: np.ndarray) -> np.ndarray:
        """Move the unmatched rows ``um`` by the ego shift: their state and this frame's prior
        boxes (``prior`` is the frame's own array, changed in place); matched rows keep theirs.
        Returns the moved rows' prior boxes."""
        d = np.array((*shift, *shift))                 # (dx, dy, dx, dy)
        ks = self.tracks.kf_state
        ks[um, :2] = ks.take(um, axis=0)[:, :2] + d[:2]
        moved = prior.take(um, axis=0)
        moved += d
        prior[um] = moved
        return moved

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

    def _output(self, det_of: np.ndarray, prior: np.ndarray, det_boxes: np.ndarray,
                shown: list | None = None) -> FrameTracks:
        """``shown``: the rows to output, ascending, when the lifecycle on Python ints
        (TrackSet.step_rows) has listed them (the rows of the mask below)."""
        T = self.tracks
        info = T.info
        if shown is not None:
            idx = np.array(shown, np.int64) if shown else _EMPTY
            show = None
        else:
            state = info[:, STATE]
            if self.cfg.output_tentative:
                show = (det_of >= 0) & (state <= CONFIRMED)     # tentative or confirmed
            else:
                show = (det_of >= 0) & (state == CONFIRMED)            # (matched this frame or new)
            idx = show.nonzero()[0]
        sel = info.take(idx, axis=0)
        det_idx = det_of.take(idx)
        boxes = det_boxes.take(det_idx, axis=0) if self.cfg.output_box == "detection" else T.xyxy(idx)
        states = (_STATE_ARR[sel[:, STATE]].tolist() if self.cfg.output_tentative
                  else ["confirmed"] * len(idx))

        def others() -> tuple[np.ndarray, np.ndarray, list[str]]:
            # ``info`` is this frame's array: the next frame's prediction makes a new one
            if show is None:
                rest = np.ones(len(info), bool)
                rest[idx] = False
                rest = rest.nonzero()[0]
            else:
                rest = (~show).nonzero()[0]
            return info[rest, ID], prior[rest], _STATE_ARR[info[rest, STATE]].tolist()

        return FrameTracks(frame=self.frame, ids=sel[:, ID], boxes=boxes, scores=T.score.take(idx),
                           classes=sel[:, CLS], states=states, prior_boxes=prior.take(idx, axis=0),
                           det_index=det_idx, _others=others)
