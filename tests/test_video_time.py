"""Video time from the container: frame drops show in drift on both video paths.

A stream written at 10 fps with presentation times 0..1.4 s, then 1.8 s on (frames 15-17 never
sent: 3 drops), read by ``cvray track --video``'s loop and by ``cvray predict``'s video
segments. With times assumed as ``index / fps`` -- or OpenCV's average fps (frames / duration)
as the period -- the drops would not show; the control stream (no gap) has none.
"""
from __future__ import annotations

import fractions

import cv2
import numpy as np
import pytest

from cvray.drift.config import DriftConfig
from cvray.drift.features import frame_timing
from cvray.drift.stream import DriftStream
from cvray.io.video import nominal_fps
from cvray.predict.records import Detections
from cvray.predict.sources import list_units, read_unit
from cvray.track.video import iter_video_frames, track_video

FPS = 10
MISSING = (15, 16, 17)
GAPPED = [p for p in range(33) if p not in MISSING]  # 30 frames sent


def _grey(p):
    return 5 + 7 * p


def _which(image):
    return int(round((float(image.mean()) - 5) / 7))


def _write(path, pts):
    import av  # PyAV is a core dependency (pyproject)
    out = av.open(str(path), "w")
    stream = out.add_stream("mpeg4", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.bit_rate = 4_000_000  # near-lossless: the grey levels survive
    stream.codec_context.time_base = fractions.Fraction(1, FPS)
    for p in pts:  # each frame's grey level says which one it is
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), _grey(p), np.uint8), format="rgb24")
        frame.pts, frame.time_base = p, fractions.Fraction(1, FPS)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return str(path)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("vt")
    return {"gapped": _write(d / "gapped.mp4", GAPPED), "steady": _write(d / "steady.mp4", range(30))}


def test_nominal_fps_and_frame_times_come_from_the_container(videos):
    path = videos["gapped"]
    cap = cv2.VideoCapture(path)
    avg = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    assert nominal_fps(path) == pytest.approx(FPS)
    frames = list(iter_video_frames(path, timestamps=True))
    assert [_which(img) for _, img, _ in frames] == GAPPED
    times = [t for _, _, t in frames]
    np.testing.assert_allclose(times, np.array(GAPPED) / FPS, atol=1e-6)
    assert frame_timing(times, nominal_fps(path))["frame_drops"] == len(MISSING)
    # what the old assumptions give: index / fps has no gap; the average rate hides part of it
    assert frame_timing(np.arange(len(times)) / FPS, FPS)["frame_drops"] == 0
    assert avg < FPS


def test_predict_video_segments_carry_presentation_times(videos):
    units = list_units(videos["gapped"], segment_frames=7)  # segments start past the gap: seeks
    assert units[0]["fps"] == pytest.approx(FPS)
    rows = sorted((r for u in units for r in read_unit(u)), key=lambda r: r["frame_index"])
    assert [r["frame_index"] for r in rows] == list(range(len(GAPPED)))
    # the frame each row holds is the one its index names (a seek at the average rate lands
    # elsewhere on this stream: the reader checks the time it landed on)
    assert [_which(r["image"]) for r in rows] == GAPPED
    np.testing.assert_allclose([r["timestamp_s"] for r in rows], np.array(GAPPED) / FPS, atol=1e-6)


class _NoDetections:
    """The Predictor surface with nothing detected: drops are about time, not detections."""

    def forward(self, images):
        return [None for _ in images]

    def to_record(self, out, meta):
        return Detections(int(meta["image_id"]), 48, 64, np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int32),
                          None, frame_index=int(meta["frame_index"]))


@pytest.mark.parametrize("kind, drops", [("gapped", len(MISSING)), ("steady", 0)])
def test_track_video_drift_counts_the_dropped_frames(videos, tmp_path, kind, drops):
    stream = DriftStream(DriftConfig(enabled=True, window_frames=10, min_samples=2))
    track_video(videos[kind], _NoDetections(), str(tmp_path / "out"), render=False, drift=stream)
    windows = stream.compute()["windows"]
    assert sum(w["frame_drops"] for w in windows) == drops
    assert max(w["max_gap_s"] for w in windows) == pytest.approx((len(MISSING) + 1) / FPS if drops else 1 / FPS)
