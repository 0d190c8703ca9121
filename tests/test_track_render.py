"""Review video: decodable mp4 with one frame per tracked frame, boxes drawn in the id colours."""
from __future__ import annotations

import cv2
import numpy as np

from cvray.data.synth_mot import make_mot
from cvray.track.io import read_mot, split_frames
from cvray.track.records import Detections
from cvray.track.render import draw_frame, id_colour, render_review
from cvray.track.sequence import track_mot_rows
from cvray.track.tracker import Tracker
from cvray.track.sequence import SequenceJob, load_frame, process_sequence
from cvray.track.config import TrackConfig


def test_draw_frame_colours_by_state():
    img = np.zeros((100, 100, 3), np.uint8)
    tr = Tracker(TrackConfig(min_hits=1, output_tentative=True))
    ft = tr.update(Detections([[10, 10, 40, 60]], [0.9]))
    out = draw_frame(img, ft, np.zeros((0, 10)))
    # the confirmed track's left edge at x=10 is painted with its id colour (thickness 2)
    assert tuple(out[35, 10]) == id_colour(1)
    ft = tr.update(Detections.empty())          # now lost, drawn grey as "others"
    assert ft.others[2] == ["lost"]
    out = draw_frame(img, ft, np.zeros((0, 10)))
    assert tuple(out[35, 10]) == (150, 150, 150)
    assert id_colour(1) != id_colour(2)


def test_render_review_video(tmp_path):
    info = make_mot(tmp_path, n_videos=1, seed=0, n_frames=12, n_objects=3)
    s = info["sequences"][0]
    dets = read_mot(s["det"])
    frames = track_mot_rows(dets, frame_rate=10)
    data = render_review(frames, lambda f: load_frame(s["dir"] + "/img1", f), dets, fps=10)
    path = tmp_path / "r.mp4"
    path.write_bytes(data)
    cap = cv2.VideoCapture(str(path))
    n, changed = 0, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n += 1
        raw = cv2.cvtColor(load_frame(s["dir"] + "/img1", n), cv2.COLOR_RGB2BGR)
        changed += int(np.abs(frame.astype(int) - raw).max() > 60)
    cap.release()
    assert n == 12 and changed == 12          # every frame carries annotations
    # through the workflow: written beside the txt under review/
    out = process_sequence(SequenceJob(name="S", det_uri=s["det"], frame_rate=10,
                                       image_dir=s["dir"] + "/img1"), TrackConfig(), str(tmp_path / "o"),
                           render=True)
    assert (tmp_path / "o" / "review" / "S.mp4").stat().st_size > 1000 and out["review_video"].endswith("S.mp4")
