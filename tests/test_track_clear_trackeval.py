"""CLEAR as TrackEval computes it (``cvray/track/metrics/clear_trackeval.py``), checked against
TrackEval 1.3 itself, exactly (``==``, integers and floats).

The reference is TrackEval's own pipeline run inside the test: ``MotChallenge2DBox`` reads the real
dev sequence's gt (``../shared/refdata/mot-dev``) and the tracker file, applies its MOT15 / MOT17
preprocessing and box IoU, and ``trackeval.metrics.CLEAR`` scores it. cvray reads the same files
with its own code. Hand-built cases pin down where the TrackEval and devkit conventions differ
(docs/tracking.md, "Metric conventions").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trackeval
from trackeval.datasets._base_dataset import _BaseDataset

from cvray.track.config import TrackConfig
from cvray.track.io import read_mot, read_seqinfo, write_mot
from cvray.track.metrics import combine, evaluate_sequence, summarize
from cvray.track.metrics.clear_trackeval import TRACKEVAL_CLEAR_COUNTS, TrackEvalClearMetrics
from cvray.track.records import tracks_to_mot
from cvray.track.sequence import track_mot_rows

#: (sequence, TrackEval benchmark): MOT15 (10-column gt with flag-0 rows) and MOT17 (classes,
#: distractors, 7-column det rows out of frame order)
SEQUENCES = (("PETS09-S2L1", "MOT15"), ("MOT17-09-FRCNN", "MOT17"))
_COUNTS = ("CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag", "CLR_Frames")
_FLOATS = ("MOTA", "MOTP", "MODA", "sMOTA", "MOTAL", "CLR_Re", "CLR_Pr", "CLR_F1", "MTR", "PTR", "MLR",
           "FP_per_frame")
_PERCENT = {"MOTA": "MOTA", "MOTP": "MOTP", "MODA": "MODA", "sMOTA": "sMOTA", "MOTAL": "MOTAL",
            "Recall": "CLR_Re", "Precision": "CLR_Pr"}
_NAMES = {"FP": "CLR_FP", "FN": "CLR_FN", "TP": "CLR_TP", "IDSW": "IDSW", "Frag": "Frag", "MT": "MT",
          "PT": "PT", "ML": "ML"}


def _trackeval_clear(gt_root: Path, trackers: Path, seq: str, benchmark: str, length: int) -> dict:
    """TrackEval's CLEAR result for ``trackers/cvray/data/<seq>.txt``, files read by TrackEval."""
    ds = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(trackers), "BENCHMARK": benchmark,
        "SKIP_SPLIT_FOL": True, "SEQ_INFO": {seq: length}, "TRACKERS_TO_EVAL": ["cvray"],
        "PRINT_CONFIG": False})
    data = ds.get_preprocessed_seq_data(ds.get_raw_seq_data("cvray", seq), "pedestrian")
    return trackeval.metrics.CLEAR({"PRINT_CONFIG": False}).eval_sequence(data)


def _assert_same(partial: dict, ref: dict) -> None:
    """Every CLEAR field of a cvray partial equals TrackEval's, bit for bit."""
    for k in _COUNTS:
        assert partial[k] == ref[k], k
    assert partial["MOTP_sum"] == ref["MOTP_sum"]
    fr = TrackEvalClearMetrics.fractions(partial)
    for k in _FLOATS:
        assert fr[k] == ref[k], (k, fr[k], ref[k])
    s = TrackEvalClearMetrics.summarize(partial)
    for name, field in _PERCENT.items():
        assert s[name] == 100.0 * ref[field], name
    for name, field in _NAMES.items():
        assert s[name] == ref[field], name


@pytest.fixture(scope="module")
def scored(dev, tmp_path_factory):
    """cvray's tracker (defaults) on the public detections; each output scored by cvray and TrackEval."""
    trackers = tmp_path_factory.mktemp("trackers")
    (trackers / "cvray" / "data").mkdir(parents=True)
    out = {}
    for seq, bench in SEQUENCES:
        info = read_seqinfo(str(dev / seq / "seqinfo.ini"))
        det = read_mot(str(dev / seq / "det" / "det.txt"))
        pred = tracks_to_mot(track_mot_rows(det, config=TrackConfig(), frame_rate=info.frame_rate,
                                            num_frames=info.seq_length))
        txt = trackers / "cvray" / "data" / f"{seq}.txt"
        write_mot(pred, str(txt))
        part = evaluate_sequence(read_mot(str(dev / seq / "gt" / "gt.txt")), read_mot(str(txt)),
                                 num_frames=info.seq_length, mot17_classes=bench == "MOT17")
        out[seq] = (part, _trackeval_clear(dev, trackers, seq, bench, info.seq_length))
    return out


@pytest.mark.parametrize("seq", [s for s, _ in SEQUENCES])
def test_clear_equals_trackeval_on_a_real_sequence(scored, seq):
    part, ref = scored[seq]
    assert ref["CLR_TP"] > 1000 and ref["IDSW"] > 0 and ref["Frag"] > 0  # a real, imperfect output
    _assert_same(part["clear"], ref)
    top = summarize(part)
    assert top["MOTA"] == 100.0 * ref["MOTA"] and top["IDSW"] == ref["IDSW"]
    assert set(top["devkit"]) >= {"MOTA", "MOTP", "IDSW", "Frag", "MT", "PT", "ML", "FP", "FN"}


def test_combined_row_equals_trackeval_combine_sequences(scored):
    refs = {seq: ref for seq, (_, ref) in scored.items()}
    ref = trackeval.metrics.CLEAR({"PRINT_CONFIG": False}).combine_sequences(refs)
    comb = combine([part for part, _ in scored.values()])["clear"]
    for k in _COUNTS[:-1]:  # CLR_Frames too, below
        assert comb[k] == ref[k], k
    assert comb["CLR_Frames"] == ref["CLR_Frames"] and comb["MOTP_sum"] == ref["MOTP_sum"]
    _assert_same(comb, ref)
    # MOTA / MOTP recomputed from the sums: MOTP is TP-weighted, not a mean of sequences
    assert comb["MOTP_sum"] / comb["CLR_TP"] == ref["MOTP"]


def test_clear_equals_trackeval_on_a_corrupted_gt_track(dev, tmp_path):
    """KITTI-13's evaluated gt turned into a tracker output with every kind of error: id swaps
    between tracks, dropped runs, frames without any box, jittered boxes around IoU 0.5, spurious
    boxes, gt ids reused -- deterministic (seed 0)."""
    seq = "KITTI-13"
    info = read_seqinfo(str(dev / seq / "seqinfo.ini"))
    gt = read_mot(str(dev / seq / "gt" / "gt.txt"))
    rng = np.random.default_rng(0)
    pr = gt[gt[:, 6] != 0].copy()
    pr[:, 6], pr[:, 7:] = 1.0, -1.0
    pr = pr[rng.random(len(pr)) > 0.15]                                # dropped boxes
    pr = pr[~np.isin(pr[:, 0], [20, 21, 22, 100])]                       # frames with no box at all
    jitter = rng.random(len(pr)) < 0.3                                   # boxes near the threshold
    pr[jitter, 2:4] += pr[jitter, 4:6] * rng.uniform(-0.4, 0.4, (jitter.sum(), 2))
    for f0 in rng.choice(np.unique(pr[:, 0]), 8, replace=False):      # identity swaps from a frame on
        present = np.unique(pr[pr[:, 0] == f0, 1])
        if len(present) < 2:
            continue
        a, b = rng.choice(present, 2, replace=False)
        late = pr[:, 0] >= f0
        ia, ib = late & (pr[:, 1] == a), late & (pr[:, 1] == b)
        pr[ia, 1], pr[ib, 1] = b, a
    n_fp = 80
    fp = np.full((n_fp, 10), -1.0)
    fp[:, 0] = rng.integers(1, info.seq_length + 1, n_fp)
    fp[:, 1] = 1000 + np.arange(n_fp)
    fp[:, 2:4] = rng.uniform(0, 1000, (n_fp, 2))
    fp[:, 4:6] = rng.uniform(20, 80, (n_fp, 2))
    fp[:, 6] = 1.0
    pr = np.concatenate([pr, fp])
    pr = pr[np.argsort(pr[:, 0], kind="stable")]

    trackers = tmp_path / "trackers"
    (trackers / "cvray" / "data").mkdir(parents=True)
    txt = trackers / "cvray" / "data" / f"{seq}.txt"
    write_mot(pr, str(txt))
    ref = _trackeval_clear(dev, trackers, seq, "MOT15", info.seq_length)
    part = evaluate_sequence(gt, read_mot(str(txt)), num_frames=info.seq_length)
    assert ref["IDSW"] >= 4 and ref["Frag"] > 10 and ref["CLR_FP"] > n_fp // 2
    _assert_same(part["clear"], ref)


# -- where the conventions differ (hand-built; reference: TrackEval CLEAR on its data dict) --------
def _rows(items) -> np.ndarray:
    """items: (frame, id, x, y) with 10x10 boxes, as (N, 10) MOT rows."""
    return np.array([[f, i, x, y, 10, 10, 1, -1, -1, -1] for f, i, x, y in items], float).reshape(-1, 10)


def _reference(gt: np.ndarray, pr: np.ndarray) -> dict:
    """TrackEval's CLEAR on a data dict built here (TrackEval's own box IoU, contiguous ids)."""
    frames = int(max(gt[:, 0].max(), pr[:, 0].max() if len(pr) else 0))
    gmap = {v: k for k, v in enumerate(np.unique(gt[:, 1]))}
    pmap = {v: k for k, v in enumerate(np.unique(pr[:, 1]))}
    data = {"gt_ids": [], "tracker_ids": [], "similarity_scores": [], "num_timesteps": frames,
            "num_gt_dets": len(gt), "num_tracker_dets": len(pr), "num_gt_ids": len(gmap),
            "num_tracker_ids": len(pmap)}
    for f in range(1, frames + 1):
        g, p = gt[gt[:, 0] == f], pr[pr[:, 0] == f]
        data["gt_ids"].append(np.array([gmap[i] for i in g[:, 1]], int))
        data["tracker_ids"].append(np.array([pmap[i] for i in p[:, 1]], int))
        data["similarity_scores"].append(_BaseDataset._calculate_box_ious(g[:, 2:6], p[:, 2:6], box_format="xywh"))
    return trackeval.metrics.CLEAR({"PRINT_CONFIG": False}).eval_sequence(data)


def _both(gt, pr) -> tuple[dict, dict]:
    part = evaluate_sequence(gt, pr)
    _assert_same(part["clear"], _reference(gt, pr))
    s = summarize(part)
    return s, s["devkit"]


def test_mostly_tracked_needs_more_than_80_percent():
    gt = _rows([(f, 1, 0, 0) for f in range(1, 6)])
    pr = _rows([(f, 7, 0, 0) for f in range(1, 5)])       # tracked 4 of 5 frames: exactly 0.8
    te, dk = _both(gt, pr)
    assert (te["MT"], te["PT"]) == (0, 1) and (dk["MT"], dk["PT"]) == (1, 0)


def test_frag_run_broken_by_a_frame_without_the_gt():
    # gt 1 absent at frame 3 while gt 2 is tracked there: TrackEval starts a new run at frame 4
    gt = _rows([(f, 1, 0, 0) for f in (1, 2, 4, 5)] + [(f, 2, 50, 0) for f in range(1, 6)])
    pr = _rows([(f, 7, 0, 0) for f in (1, 2, 4, 5)] + [(f, 8, 50, 0) for f in range(1, 6)])
    te, dk = _both(gt, pr)
    assert te["Frag"] == 1 and dk["Frag"] == 0
    assert te["IDSW"] == dk["IDSW"] == 0 and te["MOTA"] == dk["MOTA"] == 100.0


def test_frag_not_broken_by_a_frame_without_tracker_boxes():
    # frame 3 has gt but no tracker box at all: TrackEval skips it (no new run), the devkit sees a miss
    gt = _rows([(f, 1, 0, 0) for f in range(1, 11)])
    pr = _rows([(f, 7, 0, 0) for f in range(1, 11) if f != 3])
    te, dk = _both(gt, pr)
    assert te["Frag"] == 0 and dk["Frag"] == 1
    assert te["FN"] == dk["FN"] == 1 and te["MT"] == dk["MT"] == 1


def test_previous_match_bonus_only_from_the_previous_frame():
    # frame 1: gt 1 <- id 7; frame 2: gt 1 missed (gt 2 tracked); frame 3: id 7 still overlaps
    # gt 1 (IoU 0.6), id 9 sits on it exactly. The devkit keeps the last match (7, no switch);
    # TrackEval's bonus covers only the previous frame, so Hungarian picks 9: an ID switch.
    gt = _rows([(f, 1, 0, 0) for f in (1, 2, 3)] + [(f, 2, 50, 0) for f in (1, 2, 3)])
    pr = _rows([(1, 7, 0, 0), (3, 7, 2.5, 0), (3, 9, 0, 0)] + [(f, 8, 50, 0) for f in (1, 2, 3)])
    te, dk = _both(gt, pr)
    assert te["IDSW"] == 1 and dk["IDSW"] == 0
    assert te["FP"] == dk["FP"] == 1 and te["FN"] == dk["FN"] == 1
    assert te["MOTA"] == pytest.approx(50.0) and dk["MOTA"] == pytest.approx(400 / 6)
    assert te["MOTP"] == pytest.approx(100.0) and dk["MOTP"] == pytest.approx(100 * 4.6 / 5)


def test_empty_sides_follow_trackeval():
    gt = _rows([(1, 1, 0, 0), (2, 1, 0, 0)])
    te, dk = _both(gt, np.zeros((0, 10)))
    assert te["FN"] == 2 and te["ML"] == 1 and te["MOTA"] == 0.0 and te["MOTP"] == 0.0
    # no gt at all: TrackEval leaves that sequence's ratios at 0; its combined row recomputes them
    pr = _rows([(1, 7, 0, 0)])
    part = evaluate_sequence(np.zeros((0, 10)), pr)
    assert part["clear"]["CLR_FP"] == 1 and summarize(part)["MOTA"] == 0.0
    assert summarize(combine([part]))["MOTA"] == -100.0
    ref = trackeval.metrics.CLEAR({"PRINT_CONFIG": False})
    empty = ref.eval_sequence({"num_tracker_dets": 1, "num_gt_dets": 0, "num_gt_ids": 0})
    assert empty["MOTA"] == 0 and ref.combine_sequences({"a": empty})["MOTA"] == -1.0
    assert set(TRACKEVAL_CLEAR_COUNTS) <= set(part["clear"])
