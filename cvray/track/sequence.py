"""Track one sequence (pure core shared by the workflow, the per-sequence Ray actors and the benchmarks).

:func:`track_mot_rows` tracks in memory; :func:`process_sequence` is what a per-sequence Ray actor
runs (:mod:`cvray.track.distributed`) and what the workflow runs in process: read the detections,
track, write the sequence's files. Outputs are written under fixed names, so a
retried sequence replaces its own files (idempotent):

* ``<out>/<seq>.txt``                  MOTChallenge tracker format
* ``<out>/tracks/<seq>.parquet``       tracks table (:data:`cvray.track.records.TRACKS_SCHEMA`)
* ``<out>/associations/<seq>.parquet`` association log (when ``log_associations``)
* ``<out>/review/<seq>.mp4``           review video (when asked and frames are available)
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import cv2
import numpy as np
import pyarrow as pa

from cvray.io import storage
from cvray.track.config import TrackConfig
from cvray.track.io import read_mot, split_frames, write_mot
from cvray.track.records import ASSOCIATION_SCHEMA, Detections, FrameTracks, tracks_to_arrow, tracks_to_mot
from cvray.track.tracker import Tracker

__all__ = ["SequenceJob", "build_tracker", "load_frame", "process_sequence", "track_detections",
           "track_mot_rows"]


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


@dataclass(frozen=True)
class SequenceJob:
    """One sequence to track: detections (MOT txt URI, or rows), timing, optional frames and gt."""

    name: str
    det_uri: str | None = None
    frame_rate: float = 30.0
    num_frames: int | None = None
    image_dir: str | None = None
    im_ext: str = ".jpg"
    gt_uri: str | None = None
    det_rows: list | None = None  # inline rows (e.g. from a predictions Parquet)

    def to_dict(self) -> dict:
        return asdict(self)


def load_frame(image_dir: str, frame: int, ext: str = ".jpg") -> np.ndarray:
    """RGB uint8 image of a MOTChallenge frame ``<image_dir>/<frame:06d><ext>``."""
    uri = storage.join(image_dir, f"{frame:06d}{ext}")
    img = cv2.imdecode(np.frombuffer(storage.read_bytes(uri), np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{uri}: not a decodable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def process_sequence(job: SequenceJob, config: TrackConfig, out_uri: str, *, render: bool = False
                     ) -> dict:
    """Track ``job`` and write its outputs under ``out_uri``; returns a plain-data summary that
    includes the metric partials when the job has ground truth."""
    det = np.asarray(job.det_rows, dtype=np.float64).reshape(-1, 10) if job.det_rows is not None \
        else read_mot(job.det_uri)
    tracker = build_tracker(config, job.frame_rate)
    loader = (lambda f: load_frame(job.image_dir, f, job.im_ext)) if job.image_dir else None
    t0 = time.perf_counter()
    frames = track_mot_rows(det, config=config, frame_rate=job.frame_rate, num_frames=job.num_frames,
                            load_image=loader, tracker=tracker)
    seconds = time.perf_counter() - t0
    rows = tracks_to_mot(frames)
    write_mot(rows, storage.join(out_uri, f"{job.name}.txt"))
    storage.write_parquet(tracks_to_arrow(frames, job.name), storage.join(out_uri, "tracks", f"{job.name}.parquet"))
    if config.log_associations:
        logt = pa.Table.from_pylist([{"sequence": job.name, **r} for r in tracker.association_log],
                                    schema=ASSOCIATION_SCHEMA)
        storage.write_parquet(logt, storage.join(out_uri, "associations", f"{job.name}.parquet"))
    summary = {
        "sequence": job.name, "frames": len(frames), "detections": int(len(det)),
        "boxes": int(len(rows)), "tracks": int(len(np.unique(rows[:, 1]))) if len(rows) else 0,
        "tracking_fps": len(frames) / seconds if seconds > 0 else float("inf"),
        "txt": storage.join(out_uri, f"{job.name}.txt"),
    }
    if render and job.image_dir:
        from cvray.track.render import render_review

        video = render_review(frames, lambda f: load_frame(job.image_dir, f, job.im_ext), det,
                              fps=job.frame_rate)
        uri = storage.join(out_uri, "review", f"{job.name}.mp4")
        storage.write_bytes(uri, video)
        summary["review_video"] = uri
    offline = None
    if config.offline_max_gap > 0:  # opt-in, uses future frames: written and scored apart
        from cvray.track.interpolate import interpolate_tracks

        offline = interpolate_tracks(rows, max_gap=config.offline_max_gap)
        write_mot(offline, storage.join(out_uri, "offline", f"{job.name}.txt"))
        summary["offline_txt"] = storage.join(out_uri, "offline", f"{job.name}.txt")
        summary["offline_boxes"] = int(len(offline))
    if job.gt_uri and storage.exists(job.gt_uri):
        from cvray.track.metrics import evaluate_sequence

        gt = read_mot(job.gt_uri)
        summary["partial"] = evaluate_sequence(gt, rows, num_frames=job.num_frames)
        if offline is not None:
            summary["partial_offline"] = evaluate_sequence(gt, offline, num_frames=job.num_frames)
    return summary
