"""Tracking under corruption, the pure core (no Ray, no model): consistent corruption over time,
ground-truth detections, compression tiers, and what the tracker alone loses."""
from __future__ import annotations

import numpy as np
import pytest

from cvray.data.synth_mot import make_mot
from cvray.robustness.compression import Tier, yuv_roundtrip, psnr_db
from cvray.robustness.tracking import (PER_FRAME, TrackCell, corrupt_sequence, frame_rng, gt_detections,
                                       load_sequences, run_tracking_cell)
from cvray.track.config import TrackConfig


@pytest.fixture(scope="module")
def seqs(tmp_path_factory):
    m = make_mot(tmp_path_factory.mktemp("mot"), n_videos=2, seed=0, n_frames=20)
    return load_sequences(m["root"])


def test_sequences_load_from_img1_with_their_gt(seqs):
    assert [s.name for s in seqs] == ["SYN-01", "SYN-02"]
    for s in seqs:
        assert s.frames.shape == (20, 128, 128, 3) and s.frames.dtype == np.uint8 and s.fps == 10.0
        assert len(s.gt) and s.gt[:, 0].max() <= 20


def test_a_corruption_is_the_same_on_every_frame_and_noise_is_fresh_per_frame():
    still = np.stack([np.full((48, 64, 3), 120, np.uint8)] * 3)  # a static scene
    still[:, 10:30, 20:40] = 200
    for name in ("frost", "motion_blur", "spatter", "elastic_transform"):
        assert name not in PER_FRAME
        out = corrupt_sequence(still, name, 4, seed=0, sequence="A")
        assert (out[0] == out[1]).all() and (out[1] == out[2]).all(), name  # same parameters each frame
        assert not (out[0] == still[0]).all(), name
    noisy = corrupt_sequence(still, "gaussian_noise", 3, seed=0, sequence="A")
    assert not (noisy[0] == noisy[1]).all()  # sensor noise is drawn per frame
    again = corrupt_sequence(still, "gaussian_noise", 3, seed=0, sequence="A")
    assert (noisy == again).all()  # ... from a seeded stream: a retried cell has the same pixels
    assert not (corrupt_sequence(still, "gaussian_noise", 3, seed=1, sequence="A") == noisy).all()
    assert not (corrupt_sequence(still, "frost", 4, seed=0, sequence="B")[0]
                == corrupt_sequence(still, "frost", 4, seed=0, sequence="A")[0]).all()
    a, b = frame_rng(0, "A", "fog", 2, 1), frame_rng(0, "A", "fog", 2, 7)
    assert a.random() == b.random()


def test_gt_detections_are_the_gt_boxes_without_distractors():
    gt = np.array([[1, 1, 11, 21, 10, 20, 1, 1, 1, 0],   # MOT: 1-based left/top, width, height
                   [1, 2, 1, 1, 5, 5, 0, 1, 1, 0],       # conf 0: a distractor
                   [2, 1, 12, 21, 10, 20, 1, 1, 1, 0]], float)
    d = gt_detections(gt, 1)
    assert d.boxes.tolist() == [[10.0, 20.0, 20.0, 40.0]] and d.scores.tolist() == [1.0]
    assert len(gt_detections(gt, 3).scores) == 0


def _cell(seqs, condition, severity, track, detector="gt"):
    return run_tracking_cell(TrackCell("m", detector, condition, severity), seqs=seqs, predictor=None,
                             geometry=None, track_config=track, seed=0).row


def test_the_tracker_alone_only_changes_when_it_reads_pixels(seqs):
    """Ground-truth boxes: a motion-only tracker gives the very same metrics under any corruption
    (the pixels are not read); with appearance embeddings and camera-motion compensation, heavy
    noise costs identities."""
    plain = TrackConfig()
    clean = _cell(seqs, "clean", 0, plain)
    assert clean["IDSW"] == 0 and clean["IDF1"] > 95 and clean["HOTA"] > 75, clean
    assert clean["detections"] == int((np.concatenate([s.gt for s in seqs])[:, 6] != 0).sum())
    for cond, sev in (("gaussian_noise", 5), ("frost", 5)):
        r = _cell(seqs, cond, sev, plain)
        assert {k: r[k] for k in ("HOTA", "IDF1", "IDSW")} == {k: clean[k] for k in ("HOTA", "IDF1", "IDSW")}
    reads = TrackConfig.model_validate({"appearance": {"extractor": "histogram"}, "cmc": {"enabled": True}})
    c2, n2 = _cell(seqs, "clean", 0, reads), _cell(seqs, "gaussian_noise", 5, reads)
    assert n2["IDSW"] > c2["IDSW"] and n2["IDF1"] < c2["IDF1"] - 5, (c2, n2)


def test_compression_tiers_record_bitrate_and_the_crf0_baseline(seqs):
    plain = TrackConfig()
    rows = {crf: _cell(seqs, f"h264_crf{crf}", 0, plain) for crf in (0, 23, 40)}
    assert rows[0]["kind"] == "compression" and rows[0]["codec"] == "h264" and rows[40]["crf"] == 40
    assert rows[0]["bitrate_kbps"] > rows[23]["bitrate_kbps"] > rows[40]["bitrate_kbps"] > 0
    assert rows[0]["psnr_db"] > rows[23]["psnr_db"] > rows[40]["psnr_db"]
    # CRF 0 is lossless in YUV: its loss is the 4:2:0 colour conversion alone
    conv = np.mean([psnr_db(yuv_roundtrip(s.frames), s.frames) for s in seqs])
    assert abs(rows[0]["psnr_db"] - conv) < 1e-9
    assert Tier("h264", 40).name == "h264_crf40"
