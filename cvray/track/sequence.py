"""Track one whole sequence from per-frame detections (pure core shared by CLI, actors, bench)."""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from cvray.track.config import TrackConfig
from cvray.track.io import split_frames
from cvray.track.records import Detections, FrameTracks
from cvray.track.tracker import Tracker

__all__ = ["build_tracker", "track_detections", "track_mot_rows"]


def build_tracker(config: TrackConfig, frame_rate: float) -> Tracker:
    """A tracker with the appearance extractor and camera-motion compensation the config asks for."""
    extractor = cmc = None
    if config.appearance.extractor != "none":
        from cvray.track.appearance import build_extractor

        extractor = build_extractor(config.appearance)
    if config.cmc.enabled:
        from cvray.track.cmc import CameraMotion

        cmc = CameraMotion(config.cmc)
    return Tracker(config, frame_rate=frame_rate, extractor=extractor, cmc=cmc)


def track_detections(tracker: Tracker, frames: Iterable[tuple[Detections, np.ndarray | None]]
                     ) -> list[FrameTracks]:
    """Run ``tracker`` over ``(detections, image or None)`` pairs in frame order."""
    return [tracker.update(dets, image) for dets, image in frames]


def track_mot_rows(det_rows: np.ndarray, *, config: TrackConfig | None = None,
                   frame_rate: float = 30.0, num_frames: int | None = None,
                   load_image: Callable[[int], np.ndarray] | None = None,
                   tracker: Tracker | None = None) -> list[FrameTracks]:
    """Track MOTChallenge ``det.txt`` rows; frames without detections still advance the tracker.

    ``load_image(frame) -> RGB array`` is only called when the tracker needs pixels
    (appearance extractor or camera-motion compensation).
    """
    config = config or TrackConfig()
    tracker = tracker or build_tracker(config, frame_rate)
    if len(det_rows):
        tracker.fit_scores(det_rows[:, 6])         # the whole sequence's score distribution
    by_frame = split_frames(det_rows)
    last = max([num_frames or 0, *by_frame.keys()], default=0)
    needs_pixels = load_image is not None and (tracker.extractor is not None or tracker.cmc is not None)
    empty = np.zeros((0, 10))
    out = []
    for f in range(1, last + 1):
        image = load_image(f) if needs_pixels else None
        out.append(tracker.update(Detections.from_mot(by_frame.get(f, empty)), image))
    return out
