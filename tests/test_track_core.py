"""Tracker core: Kalman filter vs hand-computed values, assignment, exact association cases."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from cvray.track import matching
from cvray.track.config import TrackConfig
from cvray.track.kalman import AxisKalmanFilter, KalmanFilter, cxcywh_to_xyxy, xyxy_to_cxcywh
from cvray.track.records import Detections, tracks_from_arrow, tracks_to_arrow
from cvray.track.tracker import Tracker

CORE = ("kalman", "matching", "track", "tracker", "records", "config", "io", "cmc", "appearance",
        "diagnostics")



def _calibrated(**kw) -> TrackConfig:
    """ByteTrack's calibrated-score semantics (cvray's defaults before 2026-12-01, which now reads
    scores by rank, see docs/tracking.md): these tests pin the association mechanics with
    hand-set scores -- 0.9 high, 0.3 low, 0.05 dropped -- on streams too short to rank."""
    base = dict(scores="raw", high_score=0.6, low_score=0.1, new_track_score=0.7, fuse_score=True,
                match_max_cost=0.9, second_max_cost=0.9, tentative_max_cost=0.9, max_age=30,
                age_per_hit=0.0)
    base.update(kw)
    return TrackConfig(**base)

def test_cores_do_not_import_ray():
    root = Path(__file__).resolve().parents[1] / "cvray" / "track"
    for name in CORE + tuple(f"metrics/{p.stem}" for p in (root / "metrics").glob("*.py")):
        path = root / f"{name}.py"
        if not path.exists():
            continue
        mods = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods.add(node.module.split(".")[0])
        assert "ray" not in mods, path


# -- Kalman filter: every number below is computed by hand ---------------------------------------
# measurement (cx, cy, w, h) = (100, 50, 20, 40), std_weight_position 1/20, velocity 1/160
def test_kalman_initiate_hand_computed():
    kf = KalmanFilter(1 / 20, 1 / 160)
    m, P = kf.initiate(np.array([[100.0, 50.0, 20.0, 40.0]]))
    np.testing.assert_array_equal(m[0], [100, 50, 20, 40, 0, 0, 0, 0])
    # std = 2*(1/20)*(w,h,w,h) = (2,4,2,4); 10*(1/160)*(w,h,w,h) = (1.25,2.5,1.25,2.5)
    np.testing.assert_allclose(np.diag(P[0]), [4, 16, 4, 16, 1.5625, 6.25, 1.5625, 6.25])
    assert np.count_nonzero(P[0] - np.diag(np.diag(P[0]))) == 0


def test_kalman_predict_hand_computed():
    kf = KalmanFilter(1 / 20, 1 / 160)
    m, P = kf.initiate(np.array([[100.0, 50.0, 20.0, 40.0]]))
    m[0, 4] = 3.0  # moving right 3 px / frame
    m, P = kf.predict(m, P)
    np.testing.assert_allclose(m[0], [103, 50, 20, 40, 3, 0, 0, 0])
    # P'_xx = P_xx + P_vv + q_x = 4 + 1.5625 + (20/20)^2 = 6.5625
    assert P[0, 0, 0] == pytest.approx(6.5625)
    # P'_xv = P_vv = 1.5625 ; P'_vv = 1.5625 + (20/160)^2 = 1.578125
    assert P[0, 0, 4] == pytest.approx(1.5625) and P[0, 4, 0] == pytest.approx(1.5625)
    assert P[0, 4, 4] == pytest.approx(1.578125)
    # height: 16 + 6.25 + (40/20)^2 = 26.25
    assert P[0, 3, 3] == pytest.approx(26.25)


def test_kalman_update_hand_computed():
    kf = KalmanFilter(1 / 20, 1 / 160)
    m, P = kf.initiate(np.array([[100.0, 50.0, 20.0, 40.0]]))
    m, P = kf.predict(m, P)
    m2, P2 = kf.update(m, P, np.array([[104.0, 50.0, 20.0, 40.0]]))
    # S_xx = 6.5625 + r_x (= (20/20)^2 = 1) = 7.5625; the x block decouples from y, w, h
    s = 7.5625
    assert m2[0, 0] == pytest.approx(100 + 4 * 6.5625 / s)          # 103.4711
    assert m2[0, 4] == pytest.approx(4 * 1.5625 / s)                # velocity gain 0.8264
    np.testing.assert_allclose(m2[0, [1, 2, 3, 5, 6, 7]], [50, 20, 40, 0, 0, 0])
    assert P2[0, 0, 0] == pytest.approx(6.5625 - 6.5625 ** 2 / s)   # 0.8678
    assert P2[0, 0, 4] == pytest.approx(1.5625 - 6.5625 * 1.5625 / s)
    assert P2[0, 4, 4] == pytest.approx(1.578125 - 1.5625 ** 2 / s)
    # squared Mahalanobis distance of that measurement before the update: 4^2 / 7.5625
    d2 = kf.gating_distance(m, P, np.array([[104.0, 50.0, 20.0, 40.0], [100, 50, 20, 40]]))
    np.testing.assert_allclose(d2[0], [16 / s, 0.0])


def test_kalman_vectorised_equals_one_by_one():
    rng = np.random.default_rng(0)
    z = np.column_stack([rng.uniform(0, 100, (5, 2)), rng.uniform(5, 30, (5, 2))])
    kf = KalmanFilter()
    m, P = kf.predict(*kf.initiate(z))
    m2, P2 = kf.update(m, P, z + 1)
    for i in range(5):
        mi, Pi = kf.update(*kf.predict(*kf.initiate(z[i:i + 1])), z[i:i + 1] + 1)
        np.testing.assert_allclose(mi[0], m2[i])
        np.testing.assert_allclose(Pi[0], P2[i])
    np.testing.assert_allclose(xyxy_to_cxcywh(cxcywh_to_xyxy(z)), z)


def test_axis_filter_equals_full_filter():
    """The per-coordinate filter reproduces the 8x8 filter: means, covariances (expanded) and
    Mahalanobis distances over a run of predictions and updates, including lost-style coasting."""
    rng = np.random.default_rng(3)
    z = np.column_stack([rng.uniform(0, 500, (6, 2)), rng.uniform(5, 80, (6, 2))])
    full, axis = KalmanFilter(1 / 20, 1 / 40), AxisKalmanFilter(1 / 20, 1 / 40)
    m, P = full.initiate(z)
    X = axis.initiate_state(z)
    assert X.shape == (6, axis.state_dim) == (6, 20)
    for t in range(25):
        m, P = full.predict(m, P)
        X = axis.predict_state(X)
        zt = z + rng.normal(0, 3, z.shape) + 2 * t
        np.testing.assert_allclose(axis.gating_state(X, zt), full.gating_distance(m, P, zt), rtol=1e-9)
        if t % 5 != 4:                                   # every fifth frame: no measurement
            m, P = full.update(m, P, zt)
            X = axis.update_state(X, zt)
        mean, blocks = axis.unpack(X)
        np.testing.assert_allclose(mean, m, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(axis.to_full(blocks), P, rtol=1e-9, atol=1e-12)
    # the (mean, cov) interface of the axis filter gives the same numbers
    m2, c2 = axis.update(*axis.predict(*axis.initiate(z)), z + 1)
    m3, P3 = full.update(*full.predict(*full.initiate(z)), z + 1)
    np.testing.assert_allclose(m2, m3, rtol=1e-12)
    np.testing.assert_allclose(axis.to_full(c2), P3, rtol=1e-12)
    # and the full filter's packed state round-trips
    np.testing.assert_array_equal(full.unpack(full.pack(m, P))[1], P)


def test_tracker_axis_and_full_filter_paths_agree():
    """Camera-motion compensation switches the tracker to the full 8x8 filter; with an identity
    warp every output must equal the default (axis-filter) tracker's."""
    class IdentityMotion:
        def reset(self):
            pass

        def estimate(self, image):
            return np.eye(2, 3)

        def apply(self, warp, mean, cov):
            from cvray.track.cmc import warp_states
            return warp_states(warp, mean, cov)

    rng = np.random.default_rng(5)
    frames = []
    for t in range(40):
        n = 6
        cx = 40 + 30 * np.arange(n) + 3 * t
        boxes = np.array([_box(x, 80 + 2 * i, 18, 36) for i, x in enumerate(cx)]) + rng.normal(0, 1, (n, 4))
        scores = rng.choice([0.3, 0.9], n, p=[0.25, 0.75])
        keep = rng.random(n) > 0.1
        frames.append(Detections(boxes[keep], scores[keep]))
    img = np.zeros((8, 8, 3), np.uint8)
    a, b = Tracker(TrackConfig()), Tracker(TrackConfig(), cmc=IdentityMotion())
    assert type(a.kf).__name__ == "AxisKalmanFilter" and type(b.kf).__name__ == "KalmanFilter"
    for d in frames:
        oa, ob = a.update(d), b.update(d, image=img)
        np.testing.assert_array_equal(oa.ids, ob.ids)
        np.testing.assert_allclose(oa.boxes, ob.boxes, rtol=1e-9)
        assert oa.others[2] == ob.others[2]


def test_lifecycle_table_and_lost_tracks_stop_growing():
    from cvray.track.track import CONFIRMED, DELETED, LOST, TENTATIVE, TrackSet

    kf = AxisKalmanFilter()
    T = TrackSet(state_dim=kf.state_dim)
    T.add(kf.initiate_state(np.array([[50.0, 50, 10, 20]] * 4)), np.full(4, 0.9), np.zeros(4, int), 1,
          confirmed=False)
    T.kf_state[:, 4:8] = 1.0                                # moving and growing
    # frame 2: tracks 0, 1 matched (2 hits = min_hits -> confirmed), 2, 3 missed (deleted)
    T.info[:, 3] += 1
    assert T.step(np.array([0, 1]), min_hits=2, max_age=2).tolist() == [True, True, False, False]
    assert T.state.tolist() == [CONFIRMED, CONFIRMED] and T.hits.tolist() == [2, 2]
    # frame 3: track 1 missed -> lost, its size velocity zeroed, position velocity kept
    T.info[:, 3] += 1
    assert T.step(np.array([0]), 2, 2) is None
    assert T.state.tolist() == [CONFIRMED, LOST]
    np.testing.assert_array_equal(T.kf_state[1, 4:8], [1, 1, 0, 0])
    # frames 4, 5: still lost (2 frames since the match = max_age), then deleted at 3 > max_age
    for since, expect in ((2, [CONFIRMED, LOST]), (3, [CONFIRMED])):
        T.info[:, 3] += 1
        T.step(np.array([0]), 2, 2)
        assert T.state.tolist() == expect and T.since_update[-1] == (0 if len(expect) == 1 else since)
    assert DELETED not in T.state.tolist() and TENTATIVE not in T.state.tolist()
    # a lost track matched again is confirmed
    T.add(kf.initiate_state(np.array([[9.0, 9, 4, 4]])), np.ones(1), np.zeros(1, int), 5, confirmed=True)
    T.info[:, 3] += 1
    T.step(np.array([0]), 2, 2)
    assert T.state.tolist() == [CONFIRMED, LOST]
    T.info[:, 3] += 1
    T.step(np.array([0, 1]), 2, 2)
    assert T.state.tolist() == [CONFIRMED, CONFIRMED] and T.ids.tolist() == [1, 5]


def test_frame_output_others_stay_as_of_their_frame():
    """The list of non-output tracks is built on first access; reading it frames later must
    give what it was at its own frame (the tracker's arrays change in place)."""
    frames = [Detections([_box(20 + 5 * t, 50), _box(200 - 5 * t, 90)], [0.9, 0.9 if t < 4 else 0.05])
              for t in range(10)]
    eager, late = Tracker(_calibrated()), Tracker(_calibrated())
    now = [eager.update(d).others for d in frames]
    outs = [late.update(d) for d in frames]
    for o, n in zip(outs, now):
        np.testing.assert_array_equal(o.others[0], n[0])
        np.testing.assert_allclose(o.others[1], n[1])
        assert o.others[2] == n[2]
    assert now[6][2] == ["lost"] and now[6][0].tolist() == [2]


# -- assignment --------------------------------------------------------------------------------
def test_linear_assignment_respects_max_cost():
    cost = np.array([[0.1, 0.7], [0.7, np.inf]])
    # lapjv cost_limit semantics: {(0,0)} + 2 unmatched = 0.1 + 0.8 beats {(0,1),(1,0)} = 1.4
    m, ur, uc = matching.linear_assignment(cost, 0.8)
    assert m.tolist() == [[0, 0]] and ur.tolist() == [1] and uc.tolist() == [1]
    m, _, _ = matching.linear_assignment(np.array([[0.9]]), 0.8)
    assert len(m) == 0
    m, ur, uc = matching.linear_assignment(np.zeros((0, 3)), 0.8)
    assert len(m) == 0 and len(ur) == 0 and uc.tolist() == [0, 1, 2]


def test_linear_assignment_matches_bruteforce():
    from itertools import permutations

    rng = np.random.default_rng(1)
    for _ in range(30):
        c = rng.uniform(0, 1, (4, 4))
        c[rng.uniform(size=c.shape) < 0.3] = np.inf
        mx = 0.6
        m, _, _ = matching.linear_assignment(c, mx)
        got = sum(c[i, j] for i, j in m) + (8 - 2 * len(m)) * mx / 2
        best = np.inf
        for perm in permutations(range(4)):
            for mask in range(16):
                pairs = [(i, perm[i]) for i in range(4) if mask >> i & 1]
                if any(not c[i, j] <= mx for i, j in pairs):
                    continue
                best = min(best, sum(c[i, j] for i, j in pairs) + (8 - 2 * len(pairs)) * mx / 2)
        assert got == pytest.approx(best)


def test_solve_similarity_equals_solve_on_costs():
    rng = np.random.default_rng(2)
    for _ in range(50):
        sim = rng.uniform(0, 1, (rng.integers(1, 7), rng.integers(1, 7)))
        sim[rng.uniform(size=sim.shape) < 0.4] = 0.0
        r1, c1 = matching.solve(1.0 - sim, 0.8)
        r2, c2 = matching.solve_similarity(sim, 0.2)
        g = lambda r, c: float(np.sum(sim[r, c] - 0.2))
        assert g(r1, c1) == pytest.approx(g(r2, c2)) and np.all(sim[r2, c2] >= 0.2)


def test_iou_and_cosine():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(matching.box_iou(a, b), [[50 / 150, 0.0]])
    e = np.array([[1.0, 0.0]])
    np.testing.assert_allclose(matching.cosine_distance(e, np.array([[0.0, 1.0], [1.0, 0.0]])), [[1, 0]])
    fused = matching.fuse_cost(np.array([[0.2, 0.2]]), np.array([[0.1, 0.9]]), 0.5, 0.5)
    assert fused[0, 0] == pytest.approx(0.15) and np.isinf(fused[0, 1])


# -- exact association on hand-built sequences ----------------------------------------------------
def _box(cx, cy, w=20, h=40):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _run(tracker, frames):
    outs = []
    for dets in frames:
        outs.append(tracker.update(Detections(*dets) if not isinstance(dets, Detections) else dets))
    return outs


def test_crossing_objects_keep_ids():
    """Two objects cross horizontally (A left->right, B right->left) with different heights;
    at the crossing frames their boxes overlap strongly, the Kalman velocity keeps them apart."""
    frames = []
    for t in range(20):
        xa, xb = 20 + 6 * t, 134 - 6 * t
        boxes = [_box(xa, 60, 20, 40), _box(xb, 66, 22, 44)]
        frames.append((boxes[::-1] if t % 2 else boxes, [0.9, 0.9]))  # detection order shuffles
    outs = _run(Tracker(TrackConfig(min_hits=1)), frames)
    for t, o in enumerate(outs):
        assert len(o) == 2
        a_id = o.ids[np.argmin(np.abs((o.boxes[:, 0] + o.boxes[:, 2]) / 2 - (20 + 6 * t)))]
        assert a_id == 1, f"frame {t + 1}: object A has id {a_id}"


def test_occlusion_gap_and_low_score_recovery():
    """Object walks right and goes behind an occluder: frames 6-8 it is detected with a low
    score only (partly hidden), frames 9-10 not at all. Two-stage association keeps the track
    alive on the low-score detections; both variants coast through the gap on the Kalman
    prediction and re-find the object with the same id."""
    def frames():
        out = []
        for t in range(14):
            box = _box(20 + 5 * t, 50)
            if 5 <= t <= 7:
                out.append(Detections([box], [0.3]))
            elif t in (8, 9):
                out.append(Detections.empty())
            else:
                out.append(Detections([box], [0.9]))
        return out

    two = _run(Tracker(_calibrated(min_hits=1)), frames())
    assert [len(o) for o in two] == [1] * 8 + [0] * 2 + [1] * 4
    assert {int(o.ids[0]) for o in two if len(o)} == {1}
    assert two[5].scores[0] == pytest.approx(0.3)  # matched to the low-score detection

    one = _run(Tracker(_calibrated(min_hits=1, two_stage=False)), frames())
    assert [len(o) for o in one] == [1] * 5 + [0] * 5 + [1] * 4
    assert {int(o.ids[0]) for o in one if len(o)} == {1}   # still re-found after the gap


def test_lost_track_deleted_after_max_age_scaled_by_frame_rate():
    cfg = _calibrated(min_hits=1, max_age=30)           # 30 frames at 30 fps = 1 s
    assert cfg.max_age_frames(10) == 10
    det = Detections([_box(50, 50)], [0.9])
    tr = Tracker(cfg, frame_rate=10)
    tr.update(det)
    for _ in range(10):
        tr.update(Detections.empty())
    assert len(tr.tracks) == 1                          # lost 10 frames: kept
    tr.update(Detections.empty())
    assert len(tr.tracks) == 0                          # lost 11 > 10 frames: deleted
    out = tr.update(det)
    assert out.ids.tolist() == [2]                      # a new id, from this instance's counter
    assert Tracker(cfg).update(det).ids.tolist() == [1]  # ids are per instance


def test_tentative_needs_min_hits_and_dies_when_missed():
    cfg = TrackConfig(min_hits=3)
    tr = Tracker(cfg)
    tr.update(Detections.empty())                        # frame 1 without detections
    d = Detections([_box(50, 50)], [0.9])
    outs = [len(tr.update(d)) for _ in range(4)]
    assert outs == [0, 0, 1, 1]                          # confirmed at its 3rd hit
    tr2 = Tracker(cfg)
    tr2.update(Detections.empty())
    tr2.update(d)
    tr2.update(Detections.empty())                       # tentative missed once -> deleted
    assert len(tr2.tracks) == 0


def test_new_track_score_and_gating():
    cfg = _calibrated(min_hits=1, new_track_score=0.7, gating="mahalanobis")
    tr = Tracker(cfg)
    assert len(tr.update(Detections([_box(50, 50)], [0.65]))) == 0   # high but below new-track
    tr = Tracker(cfg)
    tr.update(Detections([_box(50, 50)], [0.9]))
    # same centre, size jumps (20x40 -> 40x60): outside the Mahalanobis gate, not matched
    far = Detections([[30, 20, 70, 80]], [0.9])   # IoU 1/3, cost 0.7 < max 0.8
    out = tr.update(far)
    assert out.ids.tolist() != [1]
    tr = Tracker(cfg.model_copy(update={"gating": "none"}))
    tr.update(Detections([_box(50, 50)], [0.9]))
    assert tr.update(far).ids.tolist() == [1]


@pytest.mark.parametrize("cfg_kw", [
    dict(gating="none", appearance={"weight": 0.9, "max_distance": 0.5}),
    dict(gating="none", appearance={"weight": 0.9, "max_distance": 0.5, "fusion": "blend"}),
    dict(),                       # defaults: IoU gate, BoT-SORT min fusion, no extractor configured
])
def test_appearance_resolves_ambiguous_swap(cfg_kw):
    """Two same-size objects exchange positions between frames (IoU can't tell them apart):
    with embeddings carried by the detections the ids follow appearance."""
    e1, e2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    cfg = _calibrated(min_hits=1, **cfg_kw)
    tr = Tracker(cfg)
    a, b = _box(50, 50), _box(56, 50)
    tr.update(Detections([a, b], [0.9, 0.9], embeddings=np.stack([e1, e2])))
    out = tr.update(Detections([a, b], [0.9, 0.9], embeddings=np.stack([e2, e1])))
    assert out.ids[np.argmin(out.boxes[:, 0])] == 2    # the left box now looks like object 2


def test_association_log_and_tracks_table():
    cfg = _calibrated(min_hits=1, log_associations=True)
    tr = Tracker(cfg)
    outs = _run(tr, [([_box(50, 50), _box(150, 50)], [0.9, 0.9]),
                     ([_box(52, 50), _box(150, 50)], [0.9, 0.3])])
    first = [r for r in tr.association_log if r["stage"] == "first"]
    second = [r for r in tr.association_log if r["stage"] == "second"]
    assert len(first) == 2 and sum(r["matched"] for r in first) == 1
    assert len(second) == 1 and second[0]["matched"] and second[0]["det_index"] == 1
    table = tracks_to_arrow(outs, "S")
    assert table.num_rows == 4 and table.schema.metadata[b"cvray.schema_version"] == b"1"
    back = tracks_from_arrow(table)["S"]
    np.testing.assert_allclose(back[:, :6], np.concatenate([o.to_mot() for o in outs])[:, :6], atol=1e-4)


def test_association_log_counts_gated_pairs():
    tr = Tracker(TrackConfig(min_hits=1, log_associations=True))
    tr.update(Detections([_box(50, 50)], [0.9]))
    tr.update(Detections([_box(51, 50), _box(150, 50), _box(300, 50)], [0.9, 0.9, 0.9]))
    (row,) = [r for r in tr.association_log if r["stage"] == "first"]
    assert row["matched"] and row["det_index"] == 0 and row["gated_out"] == 2   # no overlap: gated
    assert row["iou"] == pytest.approx(19 * 40 / (21 * 40))


def _pan_scene(ego: bool, pan: float):
    """Three wide objects and one narrow one, standing still for 5 frames, then every box moves by
    ``pan`` pixels in x (the camera pans): the wide ones still overlap their predictions, the narrow
    one (10 px wide) does not once the pan exceeds its width."""
    tr = Tracker(TrackConfig(scores="raw", min_hits=1, ego_shift=ego))
    boxes = np.array([[0, 0, 100, 200], [200, 0, 300, 200], [400, 0, 500, 200], [600, 0, 610, 40]], float)
    for _ in range(5):
        out = tr.update(Detections(boxes, np.full(4, 0.9)))
    ids = out.ids.copy()
    out = tr.update(Detections(boxes + [pan, 0, pan, 0], np.full(4, 0.9)))
    return tr, ids, out


def test_ego_shift_recovers_a_track_the_pan_moved_off_its_prediction():
    """ego_shift: the three wide objects' matches agree on a 15 px shift (MAD 0: significant), so
    the unmatched narrow track is moved by it and re-found with its id; without it the narrow
    object starts a new track (confirmed at once, min_hits 1) and its old track is lost."""
    _, ids, out = _pan_scene(True, 15.0)
    assert sorted(out.ids.tolist()) == sorted(ids.tolist())
    tr, ids, out = _pan_scene(False, 15.0)
    assert len(set(out.ids.tolist()) - set(ids.tolist())) == 1 and len(tr.tracks) == 5


def test_ego_shift_leaves_tracks_alone_without_a_coherent_shift():
    """Matches that disagree (innovations -10, +1, +12 px: median 1, MAD 11) are not a camera
    shift: the unmatched track stays on its prediction; with ego_significance=0 every median
    shift is applied and it moves by the 1 px median."""
    moved = []
    for sig in (1.0, 0.0):
        tr = Tracker(TrackConfig(scores="raw", min_hits=1, ego_significance=sig))
        boxes = np.array([[0, 0, 100, 200], [200, 0, 300, 200], [400, 0, 500, 200], [600, 0, 610, 40]], float)
        for _ in range(5):
            tr.update(Detections(boxes, np.full(4, 0.9)))
        before = tr.kf.predict_state(tr.tracks.kf_state)[3, :2].copy()
        tr.update(Detections(boxes[:3] + [[-10, 0, -10, 0], [1, 0, 1, 0], [12, 0, 12, 0]], np.full(3, 0.9)))
        moved.append(tr.tracks.kf_state[3, :2] - before)
    np.testing.assert_allclose(moved[0], [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(moved[1], [1.0, 0.0], atol=1e-9)
