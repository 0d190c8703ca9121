"""Video time as the container says it (pure; no Ray).

Frames are decoded with OpenCV everywhere in cvray. Two things the decode loop needs besides the
pixels, both read from the container instead of assumed:

* :func:`nominal_fps` -- the stream's frame rate. OpenCV's ``CAP_PROP_FPS`` is the *average*
  rate on some containers (frames / duration: 8 for a 10 fps stream missing a fifth of its
  frames), which would hide every drop; PyAV's ``guessed_rate`` (FFmpeg's r_frame_rate) is the
  rate the stream was made at. OpenCV's value is the fallback.
* :func:`frame_time_s` -- the presentation time of the frame just read (``CAP_PROP_POS_MSEC``,
  FFmpeg's best-effort timestamp), so a stream with missing frames shows its gaps (drift's
  ``frame_drops``, ``max_gap_s``); ``index / fps`` when the container gives no timestamp.
"""
from __future__ import annotations

import math

__all__ = ["frame_time_s", "nominal_fps"]


def nominal_fps(path: str, cv2_fps: float | None = None) -> float:
    """Frames per second the stream was made at (0.0 when neither PyAV nor OpenCV says)."""
    try:
        import av

        with av.open(path) as container:
            if container.streams.video:
                stream = container.streams.video[0]
                for rate in (stream.guessed_rate, stream.base_rate, stream.average_rate):
                    if rate and float(rate) > 0 and math.isfinite(float(rate)):
                        return float(rate)
    except Exception:  # PyAV raises its own error types per container problem; OpenCV decides then
        pass
    if cv2_fps is None:
        import cv2

        cap = cv2.VideoCapture(path)
        cv2_fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
        cap.release()
    return float(cv2_fps) if cv2_fps and math.isfinite(cv2_fps) and cv2_fps > 0 else 0.0


def frame_time_s(cap, index: int, fps: float) -> float:
    """Presentation time (s) of the frame ``cap.read()`` just returned; ``index / fps`` when the
    container has none (NaN when there is no fps either)."""
    import cv2

    ms = cap.get(cv2.CAP_PROP_POS_MSEC)
    if ms is not None and math.isfinite(ms) and ms >= 0 and (ms > 0 or index == 0):
        return float(ms) / 1000.0
    return index / fps if fps else float("nan")
