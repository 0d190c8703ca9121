"""Review video: every frame with detections, Kalman predictions and tracks, colour-coded.

Legend (drawn in the top-left corner of each frame):

* thin white box      -- a detection (score printed when ``show_scores``)
* thin cyan box       -- the Kalman prediction of a track before this frame's update
* thick coloured box  -- a confirmed track matched this frame (colour fixed per id, ``#id``)
* yellow box          -- a tentative track; grey box -- a lost track coasting on its prediction
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable

import cv2
import numpy as np

from cvray.track.records import FrameTracks

__all__ = ["STATE_COLOURS", "id_colour", "render_review", "draw_frame"]

STATE_COLOURS = {"tentative": (255, 210, 0), "lost": (150, 150, 150)}   # RGB
DET_COLOUR, PRED_COLOUR = (255, 255, 255), (0, 220, 255)


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, saturated RGB colour per id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 220, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _box(img, b, colour, thickness):
    x0, y0, x1, y1 = (int(round(v)) for v in b)
    cv2.rectangle(img, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_8)


def draw_frame(image: np.ndarray, tracks: FrameTracks, dets: np.ndarray, *, show_scores: bool = False,
               masks: list[np.ndarray] | None = None) -> np.ndarray:
    """Annotated RGB copy of ``image``; ``dets`` are MOT rows of this frame, ``masks`` optional
    boolean masks aligned with ``tracks`` (end-to-end mode)."""
    img = image.copy()
    scale = max(0.3, img.shape[0] / 600)
    if masks is not None:
        for tid, m in zip(tracks.ids, masks):
            img[m] = (0.5 * img[m] + 0.5 * np.array(id_colour(int(tid)))).astype(np.uint8)
    for r in np.asarray(dets).reshape(-1, 10):
        b = (r[2] - 1, r[3] - 1, r[2] - 1 + r[4], r[3] - 1 + r[5])
        _box(img, b, DET_COLOUR, 1)
        if show_scores:
            cv2.putText(img, f"{r[6]:.2f}", (int(b[0]), int(b[3]) - 2), cv2.FONT_HERSHEY_SIMPLEX,
                        0.3 * scale, DET_COLOUR, 1, cv2.LINE_AA)
    ids, boxes, states = tracks.others
    for tid, b, st in zip(ids, boxes, states):
        _box(img, b, STATE_COLOURS.get(st, (150, 150, 150)), 1)
    for b in tracks.prior_boxes:
        _box(img, b, PRED_COLOUR, 1)
    for tid, b, st in zip(tracks.ids, tracks.boxes, tracks.states):
        colour = id_colour(int(tid)) if st == "confirmed" else STATE_COLOURS.get(st, (150, 150, 150))
        _box(img, b, colour, 2)
        cv2.putText(img, f"#{int(tid)}", (int(b[0]), max(int(b[1]) - 3, 8)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * scale, colour, 1, cv2.LINE_AA)
    cv2.putText(img, f"{tracks.frame}", (3, int(12 * scale) + 2), cv2.FONT_HERSHEY_SIMPLEX,
                0.4 * scale, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def render_review(frames: list[FrameTracks], load_image: Callable[[int], np.ndarray], det_rows: np.ndarray,
                  *, fps: float = 30.0, show_scores: bool = False) -> bytes:
    """Encode the review video (mp4v) and return its bytes (write them with cvray.io.storage)."""
    from cvray.track.io import split_frames

    by_frame = split_frames(np.asarray(det_rows).reshape(-1, 10))
    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    writer = None
    try:
        for ft in frames:
            img = draw_frame(load_image(ft.frame), ft, by_frame.get(ft.frame, np.zeros((0, 10))),
                             show_scores=show_scores)
            if writer is None:
                writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(fps),
                                         (img.shape[1], img.shape[0]))
                if not writer.isOpened():
                    raise OSError("OpenCV cannot open an mp4v video writer")
            writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if writer is not None:
            writer.release()
            writer = None
        with open(path, "rb") as f:
            return f.read()
    finally:
        if writer is not None:
            writer.release()
        os.unlink(path)
