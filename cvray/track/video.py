"""End to end on a video: detect (+ segment) → track → annotated video, tracks Parquet and JSON.

The detector is any object with the :class:`cvray.predict.engine.Predictor` surface --
``forward(list of letterboxed RGB images) -> list of raw outputs`` and ``to_record(output, meta)
-> cvray.predict.records.Detections`` (boxes, scores, labels and optional RLE masks in original
pixels, after the post-processing policy). Frames are read in order with OpenCV, one model call
per ``batch_size`` frames, and fed to one :class:`~cvray.track.tracker.Tracker`. Masks follow the
detection a track was matched to in that frame.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any

import cv2
import numpy as np

from cvray.io import storage
from cvray.io.video import frame_time_s, nominal_fps
from cvray.track.config import TrackConfig
from cvray.track.io import write_mot
from cvray.track.records import Detections, FrameTracks, tracks_to_arrow, tracks_to_mot
from cvray.track.sequence import build_tracker

__all__ = ["detect_frames", "iter_video_frames", "track_video", "video_fps"]

log = logging.getLogger(__name__)


def iter_video_frames(path: str, *, timestamps: bool = False, fps: float | None = None):
    """Yield ``(frame_index 0-based, RGB image)`` in order -- ``(index, image, time_s)`` with
    ``timestamps`` (the container's presentation time, :func:`cvray.io.video.frame_time_s`);
    ``fps``: the nominal rate when the caller has it (the fallback time is index / fps);
    raises ValueError when unreadable."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot open video")
    if timestamps and not fps:
        fps = nominal_fps(path, cap.get(cv2.CAP_PROP_FPS))
    try:
        i = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield (i, rgb, frame_time_s(cap, i, fps)) if timestamps else (i, rgb)
            i += 1
    finally:
        cap.release()


def video_fps(path: str) -> float:
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return float(fps) if fps and np.isfinite(fps) and fps > 0 else 30.0


def detect_frames(predictor, frames: list[tuple[int, np.ndarray]], geometry) -> list[Any]:
    """``predictor``'s records (or None for a NaN/inf output) for ``(frame index, RGB image)`` pairs."""
    from cvray.predict.engine import preprocess_row

    rows = [preprocess_row({"image": img, "image_id": i, "file_name": "", "uri": "", "frame_index": i,
                            "timestamp_s": float("nan"), "ok": True, "rule": "", "error": ""}, geometry)
            for i, img in frames]
    outs = predictor.forward([r["image"] for r in rows])
    return [predictor.to_record(o, r) for o, r in zip(outs, rows)]


def _frame_count(path: str) -> int | None:
    cap = cv2.VideoCapture(path)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    return n if n > 0 else None


def track_video(video: str, predictor, out_uri: str, *, track_config: TrackConfig | None = None,
                geometry=None, batch_size: int = 4, render: bool = True, name: str | None = None,
                on_progress=None, drift=None) -> dict:
    """Track every frame of ``video`` (local path or URI); write under ``out_uri``:
    ``<name>.txt`` (MOTChallenge), ``tracks/<name>.parquet``, ``<name>.json`` (per frame: id, box,
    score, class, mask RLE) and ``review/<name>.mp4`` (masks, boxes, ids). Returns a summary.
    ``on_progress(frames_done, frames_total_or_None, nan_frames=...)`` after each batch.
    ``drift``: a :class:`cvray.drift.stream.DriftStream` fed every frame (source: the video's
    name; its image features and the tracked boxes' scores, classes and track ids)."""
    from pycocotools import mask as mask_utils

    from cvray.predict.config import GeometryConfig
    from cvray.track.render import draw_frame

    cfg = track_config or TrackConfig()
    geometry = geometry or GeometryConfig()
    name = name or os.path.splitext(os.path.basename(video.rstrip("/")))[0]
    with tempfile.TemporaryDirectory() as tmp:
        local = storage.local_copy(video, tmp)
        fps = video_fps(local)
        total = _frame_count(local)  # from the container; None when it does not say
        tracker = build_tracker(cfg, fps)
        results: list[FrameTracks] = []
        frames_json: list[dict] = []
        video_path = os.path.join(tmp, "review.mp4")
        writer = None
        nan_frames = 0
        batch: list[tuple[int, np.ndarray]] = []
        times: dict[int, float] = {}  # frame -> the container's presentation time (s)
        nominal = nominal_fps(local) or fps  # drops are gaps against the rate the stream was made at
        if drift is not None:
            drift.fps[name] = nominal

        def flush() -> None:
            nonlocal writer, nan_frames
            for (i, img), rec in zip(batch, detect_frames(predictor, batch, geometry)):
                if rec is None:  # NaN/inf model output: track on with an empty frame
                    nan_frames += 1
                    dets, masks = Detections.empty(), None
                else:
                    dets, masks = Detections(rec.boxes, rec.scores, rec.labels), rec.masks
                ft = tracker.update(dets, img)
                results.append(ft)
                if drift is not None:
                    from cvray.drift.stream import frame_features

                    f = frame_features(img)
                    t = times.pop(i, float("nan"))
                    drift.add(name, i, t if np.isfinite(t) else (i / fps if fps else None),
                              f["drift_features"], f["drift_luma"],
                              {"scores": ft.scores, "labels": ft.classes, "track_ids": ft.ids, "frame_index": i})
                tmasks = [masks[j] if (masks is not None and j >= 0) else None for j in ft.det_index]
                frames_json.append({"frame": i + 1, "tracks": [
                    {"track_id": int(t), "box_xyxy": [round(float(v), 2) for v in b], "score": float(s),
                     "class_id": int(c), "mask": ({"size": m["size"], "counts": m["counts"] if isinstance(
                         m["counts"], str) else m["counts"].decode()} if m is not None else None)}
                    for t, b, s, c, m in zip(ft.ids, ft.boxes, ft.scores, ft.classes, tmasks)]})
                if render:
                    bool_masks = None
                    if masks is not None:
                        bool_masks = [mask_utils.decode(m).astype(bool) if m is not None
                                      else np.zeros(img.shape[:2], bool) for m in tmasks]
                    frame_img = draw_frame(img, ft, np.zeros((0, 10)), masks=bool_masks)
                    if writer is None:
                        writer = cv2.VideoWriter(video_path, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                                 (img.shape[1], img.shape[0]))
                    writer.write(cv2.cvtColor(frame_img, cv2.COLOR_RGB2BGR))
            batch.clear()
            if on_progress is not None:
                on_progress(len(results), total, nan_frames=nan_frames)

        try:
            for i, img, t in iter_video_frames(local, timestamps=True, fps=nominal):
                batch.append((i, img))
                times[i] = t
                if len(batch) >= batch_size:
                    flush()
            if batch:
                flush()
        finally:
            if writer is not None:
                writer.release()
        rows = tracks_to_mot(results)
        write_mot(rows, storage.join(out_uri, f"{name}.txt"))
        storage.write_parquet(tracks_to_arrow(results, name), storage.join(out_uri, "tracks", f"{name}.parquet"))
        storage.write_json(storage.join(out_uri, f"{name}.json"),
                           {"video": video, "fps": fps, "frames": frames_json})
        summary = {"sequence": name, "frames": len(results), "boxes": int(len(rows)),
                   "tracks": int(len(np.unique(rows[:, 1]))) if len(rows) else 0, "fps": fps,
                   "nan_frames": nan_frames}
        if render and os.path.exists(video_path):
            uri = storage.join(out_uri, "review", f"{name}.mp4")
            with open(video_path, "rb") as f:
                storage.write_bytes(uri, f.read())
            summary["review_video"] = uri
    return summary
