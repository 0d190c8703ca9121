"""End-to-end video tracking (detect -> segment -> track -> render) with a ground-truth detector.

The detector below is a real implementation of the Predictor surface (``forward`` /
``to_record``) that reads boxes from the synthetic gt instead of a network, so the test checks the
video reading, frame order, mask routing, outputs and tracking quality exactly.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from cvray.data.synth_mot import make_mot
from cvray.predict.records import Detections as PredDetections
from cvray.track.io import read_mot, split_frames
from cvray.track.metrics import evaluate_sequence, summarize
from cvray.track.video import track_video


class GtDetector:
    def __init__(self, gt: np.ndarray, h: int, w: int) -> None:
        self.by_frame, self.h, self.w = split_frames(gt), h, w

    def forward(self, images):
        return [{} for _ in images]

    def to_record(self, out, meta):
        rows = self.by_frame.get(int(meta["frame_index"]) + 1, np.zeros((0, 10)))
        x0, y0 = np.clip(rows[:, 2] - 1, 0, self.w), np.clip(rows[:, 3] - 1, 0, self.h)
        x1 = np.clip(rows[:, 2] - 1 + rows[:, 4], 0, self.w)
        y1 = np.clip(rows[:, 3] - 1 + rows[:, 5], 0, self.h)
        boxes = np.c_[x0, y0, x1, y1]
        keep = (x1 - x0 >= 2) & (y1 - y0 >= 2)
        masks = []
        for b in boxes[keep]:
            m = np.zeros((self.h, self.w), np.uint8, order="F")
            m[int(b[1]):int(b[3]), int(b[0]):int(b[2])] = 1
            masks.append(mask_utils.encode(m))
        return PredDetections(int(meta["image_id"]), self.h, self.w, boxes[keep], np.full(keep.sum(), 0.9),
                              np.ones(keep.sum(), np.int32), masks, frame_index=int(meta["frame_index"]))


def test_track_video_end_to_end(tmp_path):
    info = make_mot(tmp_path, n_videos=1, seed=6, n_frames=20, n_objects=3)
    s = info["sequences"][0]
    gt = read_mot(s["gt"])
    out = tmp_path / "out"
    summary = track_video(s["video"], GtDetector(gt, 128, 128), str(out), batch_size=3)
    assert summary["frames"] == 20 and summary["tracks"] >= 3
    res = json.loads((out / "SYN-01.json").read_text())
    assert [f["frame"] for f in res["frames"]] == list(range(1, 21))
    first = next(t for f in res["frames"] for t in f["tracks"])
    m = mask_utils.decode({"size": first["mask"]["size"], "counts": first["mask"]["counts"].encode()})
    assert m.sum() > 0                                        # the matched detection's mask travels
    pred = read_mot(str(out / "SYN-01.txt"))
    s_ = summarize(evaluate_sequence(gt, pred))
    assert s_["IDSW"] <= 1 and s_["MOTA"] > 70, s_           # clean detections: near-perfect tracks
    cap = cv2.VideoCapture(str(out / "review" / "SYN-01.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 20


def test_track_video_unreadable(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="x.mp4"):
        track_video(str(bad), GtDetector(np.zeros((0, 10)), 8, 8), str(tmp_path / "o"))


def test_cli_video_with_real_mask_model(tmp_path, capsys):
    """`cvray track --video --model CKPT` with a tiny random-init Mask R-CNN (CPU)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from predict_helpers import tiny_model_config, write_video

    from cvray.cli.main import main

    cfg = tiny_model_config(tmp_path, arch="maskrcnn")
    video = write_video(tmp_path / "clip.mp4", 6)
    rc = main(["track", "--video", str(video), "--model", cfg.weights, "--out", str(tmp_path / "out"),
               "--root", str(tmp_path / "runs"), "--json",
               "predict.model.arch=maskrcnn", "predict.model.backbone=mobilenet_v3_large_fpn",
               "predict.model.num_classes=3", "predict.model.min_size=64", "predict.model.max_size=64",
               "predict.model.fpn_channels=32", "predict.model.box_head_dim=64", "predict.model.mask_head_dim=32",
               "predict.model.mask_head_layers=1", "predict.model.rpn_pre_nms_top_n_test=100",
               "predict.model.rpn_post_nms_top_n_test=20", "predict.model.box_score_thresh=0.0",
               "predict.geometry.size=[64,64]", "predict.postprocess.score_threshold=0.0",
               "track.high_score=0.0", "track.new_track_score=0.0", "track.min_hits=1"])
    assert rc == 0
    cap = capsys.readouterr()
    summary = json.loads(cap.out.strip().splitlines()[-1])
    assert summary["frames"] == 6 and summary["nan_frames"] == 0
    assert "cvray track --video: 6/6 frame (100%)" in cap.err  # progress on stderr, --json clean
    res = json.loads((tmp_path / "out" / "clip.json").read_text())
    assert [f["frame"] for f in res["frames"]] == list(range(1, 7))
    tracks = [t for f in res["frames"] for t in f["tracks"]]
    assert len(tracks) == summary["boxes"] > 0                 # every reported box has a record
    assert all(t["mask"] is not None for t in tracks)          # mask model: masks travel with tracks
    assert (tmp_path / "out" / "review" / "clip.mp4").stat().st_size > 0
