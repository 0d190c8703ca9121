"""The tracker's per-frame shortcuts give exactly the numbers of the general code they bypass.

Each shortcut (box_iou's x/y-together branch, the solver's no-conflict fast path, the Python
candidate-pair stages after an ego shift) is switched off by its size limit and the outputs are
compared bit for bit (docs/benchmarks.md, tracker speed)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from cvray.track import matching
from cvray.track import tracker as tracker_mod
from cvray.track.config import TrackConfig
from cvray.track.records import Detections
from cvray.track.tracker import Tracker


def _boxes(rng, n, nan=False):
    b = rng.uniform(0, 200, (n, 4))
    b[:, 2:] = b[:, :2] + rng.uniform(-5, 60, (n, 2))          # some empty boxes too
    if nan and n:
        b[-1, rng.integers(4)] = np.nan
    return b


def test_box_iou_xy_together_equals_column_path(monkeypatch):
    rng = np.random.default_rng(0)
    cases = [(_boxes(rng, n), _boxes(rng, m, nan=k % 5 == 0))
             for k, (n, m) in enumerate(rng.integers(0, 15, (300, 2)))]
    fast = [matching.box_iou(a, b) for a, b in cases]
    monkeypatch.setattr(matching, "_XY_TOGETHER_MAX", -1)
    for (a, b), f in zip(cases, fast):
        s = matching.box_iou(a, b)
        assert s.shape == f.shape and np.array_equal(s.view(np.int64), f.view(np.int64))


def _lsa_gain(gain):
    rows, cols = linear_sum_assignment(np.fmax(gain, 0.0), maximize=True)
    keep = gain[rows, cols] >= 0.0
    return rows[keep], cols[keep]


def test_solver_fast_path_equals_scipy():
    rng = np.random.default_rng(1)
    for _ in range(3000):
        sim = rng.uniform(0, 1, tuple(rng.integers(1, 9, 2)))
        sim[rng.uniform(size=sim.shape) < rng.uniform(0.5, 0.95)] = 0.0
        gain = sim - 0.3
        r, c = matching._solve_gain(gain)
        r0, c0 = _lsa_gain(gain)
        assert np.array_equal(r, r0) and np.array_equal(c, c0)


@pytest.mark.parametrize("n_objects", [4, 10, 25])
def test_small_frame_stages_equal_dense_stages(monkeypatch, n_objects):
    """A panning camera (ego shifts on most frames), crossing objects, false positives: the Python
    stages after a shift give the same tracks as the matrix stages."""
    rng = np.random.default_rng(n_objects)
    pos = rng.uniform(0, 600, (n_objects, 2))
    vel = rng.normal(0, 3, (n_objects, 2))
    size = rng.uniform(20, 60, (n_objects, 2))
    frames = []
    for f in range(120):
        pan = np.array([8.0 * np.sin(f / 9.0), 3.0 * np.cos(f / 13.0)])
        pos += vel + pan
        keep = rng.uniform(size=n_objects) > 0.15
        xy = pos[keep] + rng.normal(0, 2, (keep.sum(), 2))
        wh = size[keep] * rng.uniform(0.9, 1.1, (keep.sum(), 2))
        fp = rng.uniform(0, 600, (rng.poisson(1.5), 2))
        boxes = np.r_[np.c_[xy, xy + wh], np.c_[fp, fp + 40]]
        scores = rng.uniform(0.05, 1.0, len(boxes))
        frames.append(Detections(boxes=boxes, scores=scores))

    def run():
        tr = Tracker(TrackConfig(), frame_rate=25.0)
        tr.fit_scores(np.concatenate([d.scores for d in frames]))
        outs = [tr.update(Detections(boxes=d.boxes.copy(), scores=d.scores.copy())) for d in frames]
        return [(o.ids.tolist(), o.boxes.tolist(), o.prior_boxes.tolist(), o.det_index.tolist(),
                 [a.tolist() for a in o.others[:2]]) for o in outs]

    calls = []
    orig = Tracker._after_shift_small
    monkeypatch.setattr(Tracker, "_after_shift_small",
                        lambda self, *a: calls.append(1) or orig(self, *a))
    fast = run()
    assert calls, "the scene should exercise the small-frame stages"
    monkeypatch.setattr(tracker_mod, "_SMALL_MAX", -1)
    monkeypatch.setattr(matching, "_XY_TOGETHER_MAX", -1)
    assert run() == fast


def test_solve_similarity_fast_path_equals_scipy():
    """The fast path decided on the similarity itself (no gain matrix), exact ties at the
    threshold and NaN included."""
    rng = np.random.default_rng(2)
    for k in range(3000):
        sim = rng.uniform(0, 1, tuple(rng.integers(1, 9, 2)))
        sim[rng.uniform(size=sim.shape) < rng.uniform(0.5, 0.95)] = 0.0
        if k % 7 == 0:
            sim.flat[rng.integers(sim.size)] = 0.3                  # gain exactly 0
        if k % 11 == 0:
            sim.flat[rng.integers(sim.size)] = np.nan
        r, c = matching.solve_similarity(sim, 0.3)
        r0, c0 = _lsa_gain(sim - 0.3)
        assert np.array_equal(r, r0) and np.array_equal(c, c0)


def test_kalman_update_boxes_equals_update_state():
    """AxisKalmanFilter.update_boxes (measurement terms laid out like the state) gives
    update_state's numbers and xyxy_to_cxcywh's measurements, bit for bit."""
    from cvray.track.kalman import AxisKalmanFilter, xyxy_to_cxcywh

    rng = np.random.default_rng(3)
    kf = AxisKalmanFilter(1 / 20, 0.003)
    for n in (1, 3, 12, 40):
        z0 = np.c_[rng.uniform(-50, 900, (n, 2)), rng.uniform(5, 120, (n, 2))]
        state = kf.initiate_state(z0)
        for _ in range(3):
            state = kf.predict_state(state)
        boxes = _boxes(rng, n)
        boxes[:, :2] -= 100.0                                        # negative coordinates too
        for r_scale in (None, rng.uniform(0.05, 1.0, n)):
            z = xyxy_to_cxcywh(boxes)
            ref = kf.update_state(state, z, r_scale)
            new, zz = kf.update_boxes(state, boxes, r_scale)
            assert np.array_equal(new.view(np.int64), ref.view(np.int64))
            assert np.array_equal(np.ascontiguousarray(zz).view(np.int64), z.view(np.int64))


def test_small_frame_ego_move_paths_agree(monkeypatch):
    """The element-by-element ego move of a few tracks and the gather/scatter one give the same
    tracks (the panning scene of test_small_frame_stages_equal_dense_stages)."""
    rng = np.random.default_rng(5)
    n_objects = 12
    pos = rng.uniform(0, 600, (n_objects, 2))
    vel = rng.normal(0, 3, (n_objects, 2))
    size = rng.uniform(20, 60, (n_objects, 2))
    frames = []
    for f in range(100):
        pos += vel + np.array([7.0 * np.sin(f / 7.0), 4.0 * np.cos(f / 11.0)])
        keep = rng.uniform(size=n_objects) > 0.2
        xy = pos[keep] + rng.normal(0, 2, (keep.sum(), 2))
        boxes = np.c_[xy, xy + size[keep]]
        frames.append(Detections(boxes=boxes, scores=rng.uniform(0.05, 1.0, len(boxes))))

    def run():
        tr = Tracker(TrackConfig(), frame_rate=25.0)
        tr.fit_scores(np.concatenate([d.scores for d in frames]))
        outs = [tr.update(Detections(boxes=d.boxes.copy(), scores=d.scores.copy())) for d in frames]
        return [(o.ids.tolist(), o.boxes.tolist(), o.prior_boxes.tolist(), o.det_index.tolist(),
                 [a.tolist() for a in o.others[:2]]) for o in outs], tr.tracks.kf_state.tolist()

    fast = run()
    monkeypatch.setattr(tracker_mod, "_EGO_PY_ROWS", -1)
    assert run() == fast
    monkeypatch.setattr(tracker_mod, "_SMALL_MAX", -1)
    assert run() == fast


@pytest.mark.parametrize("age_per_hit,freeze_lost", [(1.0, False), (0.0, False), (1.0, True)])
def test_step_rows_equals_step(age_per_hit, freeze_lost):
    """The lifecycle on Python ints (TrackSet.step_rows) leaves every array as TrackSet.step does."""
    from cvray.track.track import HITS, SINCE, STATE, TrackSet
    rng = np.random.default_rng(int(age_per_hit * 10 + freeze_lost))
    for case in range(400):
        n = int(rng.integers(0, 20))
        sets = []
        for _ in range(2):
            ts = TrackSet(state_dim=16)
            sets.append(ts)
        info = np.zeros((n, 6), np.int64)
        info[:, 0] = np.arange(1, n + 1)
        info[:, STATE] = rng.integers(0, 3, n)
        info[:, HITS] = rng.integers(1, 40, n)
        info[:, SINCE] = rng.integers(0, 40, n)
        info[:, 4] = rng.integers(0, 3, n)
        ks = rng.normal(size=(n, 16))
        sc, ob, kl = rng.uniform(size=n), rng.normal(size=(n, 4)), rng.normal(size=(n, 16))
        for ts in sets:
            ts.info, ts.kf_state, ts.score, ts.obs, ts.kf_last = (info.copy(), ks.copy(), sc.copy(),
                                                                  ob.copy(), kl.copy())
        det_of = np.where(rng.uniform(size=n) < 0.5, rng.integers(0, 9, n), -1)
        rows = (det_of >= 0).nonzero()[0]
        min_hits, max_age = int(rng.integers(1, 4)), int(rng.integers(1, 30))
        since_step = case % 2                      # the frame's +1 added before (numpy) or in step_rows
        if since_step:
            sets[0].info = sets[0].info + np.eye(6, dtype=np.int64)[SINCE]
        k0 = sets[0].step(rows, min_hits, max_age, age_per_hit=age_per_hit, freeze_lost=freeze_lost,
                          matched=(det_of >= 0).view(np.uint8))
        k1 = sets[1].step_rows(det_of.tolist(), min_hits, max_age, age_per_hit=age_per_hit,
                               freeze_lost=freeze_lost, since_step=since_step)
        assert (k0 is None) == (k1 is None)
        if k0 is not None:
            assert k1.dtype == k0.dtype and np.array_equal(k0, k1)
        for name in ("info", "kf_state", "score", "obs", "kf_last"):
            a, b = getattr(sets[0], name), getattr(sets[1], name)
            assert a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8)), name


@pytest.mark.parametrize("n_objects", [4, 10, 25])
def test_small_frame_lifecycle_equals_array_lifecycle(monkeypatch, n_objects):
    """The tracker with the lifecycle on Python ints (and the output rows it lists) gives the same
    tracks as with TrackSet.step and the output mask."""
    rng = np.random.default_rng(100 + n_objects)
    pos = rng.uniform(0, 600, (n_objects, 2))
    vel = rng.normal(0, 3, (n_objects, 2))
    size = rng.uniform(20, 60, (n_objects, 2))
    frames = []
    for f in range(150):
        pos += vel
        keep = rng.uniform(size=n_objects) > 0.25
        xy = pos[keep] + rng.normal(0, 2, (keep.sum(), 2))
        wh = size[keep] * rng.uniform(0.9, 1.1, (keep.sum(), 2))
        fp = rng.uniform(0, 600, (rng.poisson(1.5), 2))
        boxes = np.r_[np.c_[xy, xy + wh], np.c_[fp, fp + 40]]
        frames.append(Detections(boxes=boxes, scores=rng.uniform(0.05, 1.0, len(boxes))))

    def run(cfg):
        tr = Tracker(cfg, frame_rate=25.0)
        tr.fit_scores(np.concatenate([d.scores for d in frames]))
        outs = [tr.update(Detections(boxes=d.boxes.copy(), scores=d.scores.copy())) for d in frames]
        return [(o.ids.tolist(), o.boxes.tolist(), o.states, o.det_index.tolist(),
                 [np.asarray(a).tolist() for a in o.others]) for o in outs]

    cfgs = [TrackConfig(), TrackConfig(age_per_hit=0, freeze_lost=True), TrackConfig(output_tentative=True),
            TrackConfig(max_age=3), TrackConfig(ocr=True, oru=True),
            TrackConfig(confirm_score=0.8), TrackConfig(min_hits=1), TrackConfig(min_hits=3, output_tentative=True)]
    calls = []
    from cvray.track.track import TrackSet
    orig = TrackSet.step_rows
    monkeypatch.setattr(TrackSet, "step_rows", lambda self, *a, **k: calls.append(1) or orig(self, *a, **k))
    fast = [run(c) for c in cfgs]
    assert calls, "the scene should exercise the Python lifecycle"
    monkeypatch.setattr(tracker_mod, "_STEP_PY_MAX", -1)
    assert [run(c) for c in cfgs] == fast
