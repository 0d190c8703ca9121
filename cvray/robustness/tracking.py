"""Tracking under corruption, without Ray: corrupt (or compress) whole sequences -> detect -> track
-> HOTA / IDF1 / ID switches, one row per cell of the ``tracking_robustness`` table.

A cell is (model, detector, condition, severity) over every sequence of a MOTChallenge folder:

* ``condition`` is ``clean``, a corruption name (severity 1-5) or a compression tier
  (``h264_crf23``; severity 0) -- for a tier, the sequence is encoded and decoded in memory
  (:mod:`cvray.robustness.compression`), and the bitrate it took is recorded beside the metrics.
* ``detector`` is ``model`` (the model under test detects every corrupted frame) or ``gt`` (the
  ground-truth boxes, score 1: the model is not the subject; what changes with the corruption is
  what the tracker itself reads from the pixels -- appearance embeddings, camera-motion
  compensation -- so with ``track.appearance.extractor=none`` and no CMC those rows stay flat).

A corruption is applied the same way on every frame of a sequence: its random draws (a frost
crop, a motion-blur angle, a spatter or rain layer, the elastic field, glass-blur offsets) come
from one generator per (seed, sequence, corruption, severity), re-seeded for each frame, so the
"lens" does not change between frames. Only sensor noise (:data:`PER_FRAME`) is drawn afresh per
frame, from a stream seeded by (seed, sequence, corruption, severity, frame): a retried cell
reproduces its frames bit for bit either way.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from cvray.robustness.records import CLEAN

__all__ = ["PER_FRAME", "TrackCell", "SequenceData", "frame_rng", "corrupt_sequence", "gt_detections",
           "load_sequences", "run_tracking_cell", "TrackingCellWorker"]

#: corruptions that are sensor noise: drawn afresh on every frame (the rest: once per sequence)
PER_FRAME: frozenset[str] = frozenset({"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
                                       "low_light"})


@dataclass(frozen=True)
class TrackCell:
    """One unit of work: every sequence under one condition, tracked from one detector."""

    model: str
    detector: str  # "model" | "gt"
    corruption: str  # "clean", a corruption name, or a compression tier name ("h264_crf23")
    severity: int  # 1-5 for corruptions, 0 for clean and compression tiers

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.model, self.detector, self.corruption, self.severity)


@dataclass
class SequenceData:
    """A sequence held in memory: RGB frames (T, H, W, 3) uint8, its gt rows (MOT (N, 10)), fps."""

    name: str
    frames: np.ndarray
    gt: np.ndarray
    fps: float


def frame_rng(seed: int, sequence: str, corruption: str, severity: int, frame: int) -> np.random.Generator:
    """The generator frame ``frame`` of ``sequence`` is corrupted with (see the module doc)."""
    key = [int(seed), zlib.crc32(sequence.encode()), zlib.crc32(corruption.encode()), int(severity)]
    if corruption in PER_FRAME:
        key.append(int(frame))
    return np.random.default_rng(key)


def corrupt_sequence(frames: Iterable[np.ndarray], corruption: str, severity: int, *, seed: int,
                     sequence: str) -> np.ndarray:
    """Every frame under ``corruption`` at ``severity`` (frames counted from 1)."""
    from cvray.robustness.corruptions import corrupt

    return np.stack([corrupt(f, corruption, severity, frame_rng(seed, sequence, corruption, severity, t))
                     for t, f in enumerate(frames, 1)])


def gt_detections(gt: np.ndarray, frame: int):
    """The ground-truth boxes of ``frame`` as detections (score 1, label 1), distractors (MOT
    ``conf`` flag 0) left out."""
    from cvray.track.records import Detections

    rows = gt[(gt[:, 0] == frame) & (gt[:, 6] != 0)]
    if not len(rows):
        return Detections.empty()
    xywh = rows[:, 2:6]
    boxes = np.concatenate([xywh[:, :2] - 1.0, xywh[:, :2] - 1.0 + xywh[:, 2:]], axis=1)  # MOT is 1-based
    return Detections(boxes, np.ones(len(rows)), np.ones(len(rows), dtype=np.int64))


def load_sequences(mot_root: str, *, max_frames: int | None = None) -> list[SequenceData]:
    """Every sequence of ``mot_root`` with ``gt/gt.txt``: frames from ``img1/`` (``seqinfo.ini``)
    or from ``<SEQ>/<SEQ>.mp4``, sorted by name; at most ``max_frames`` frames each."""
    from cvray.data.mot import read_seqinfo
    from cvray.io import storage
    from cvray.track.io import find_sequences, read_mot
    from cvray.track.sequence import load_frame
    from cvray.track.video import iter_video_frames, video_fps

    out = []
    for name, gt_uri in sorted(find_sequences(mot_root, "gt").items()):
        seq = storage.join(mot_root, name)
        info_uri = storage.join(seq, "seqinfo.ini")
        frames: list[np.ndarray] = []
        if storage.exists(info_uri):
            info = read_seqinfo(info_uri)
            n = info.seq_length if not max_frames else min(info.seq_length, max_frames)
            frames = [load_frame(storage.join(seq, info.im_dir), t, info.im_ext) for t in range(1, n + 1)]
            fps = info.frame_rate
        else:
            video = storage.join(seq, f"{name}.mp4")
            if not storage.exists(video):
                raise ValueError(f"{seq}: neither seqinfo.ini + img1/ nor {name}.mp4")
            for i, img in iter_video_frames(video):
                if max_frames and i >= max_frames:
                    break
                frames.append(img)
            fps = video_fps(video)
        if not frames:
            raise ValueError(f"{seq}: no frames")
        gt = read_mot(gt_uri)
        out.append(SequenceData(name, np.stack(frames), gt[gt[:, 0] <= len(frames)], float(fps)))
    return out


@dataclass
class TrackingCellResult:
    row: dict[str, Any]


def _condition(cell: TrackCell, seqs: list[SequenceData], seed: int, preset: str
               ) -> tuple[str, list[np.ndarray], dict[str, Any]]:
    """(kind, frames per sequence, compression columns) of the cell's condition."""
    from cvray.robustness.compression import Tier, compress_sequence

    if cell.corruption == CLEAN:
        return "clean", [s.frames for s in seqs], {}
    if cell.severity > 0:
        return "corruption", [corrupt_sequence(s.frames, cell.corruption, cell.severity, seed=seed, sequence=s.name)
                              for s in seqs], {}
    codec, _, crf = cell.corruption.partition("_crf")
    tier = Tier(codec, int(crf))
    results = [compress_sequence(s.frames, tier, fps=max(1, int(round(s.fps))), preset=preset) for s in seqs]
    bits = sum(8.0 * r.stream_bytes for r in results)
    secs = sum(len(s.frames) / max(1, int(round(s.fps))) for s in seqs)
    psnr = [r.psnr_db for r in results]
    extra = {"codec": tier.codec, "crf": tier.crf, "bitrate_kbps": bits / secs / 1000.0 if secs else None,
             "psnr_db": float(np.mean(psnr)) if all(np.isfinite(psnr)) else float("inf")}
    return "compression", [r.frames for r in results], extra


def run_tracking_cell(cell: TrackCell, *, seqs: list[SequenceData], predictor, geometry, track_config,
                      seed: int, batch_size: int = 4, preset: str = "medium") -> TrackingCellResult:
    """The cell's row: metrics over all sequences combined (TrackEval's way)."""
    from cvray.robustness.corruptions import family
    from cvray.track.metrics.evaluate import combine, evaluate_sequence, summarize
    from cvray.track.records import Detections, tracks_to_mot
    from cvray.track.sequence import build_tracker
    from cvray.track.video import detect_frames

    t0 = time.perf_counter()
    kind, frames_per_seq, extra = _condition(cell, seqs, seed, preset)
    partials, n_dets, n_frames = [], 0, 0
    for s, frames in zip(seqs, frames_per_seq):
        tracker = build_tracker(track_config, s.fps)
        tracked = []
        for start in range(0, len(frames), batch_size):
            batch = [(i, frames[i]) for i in range(start, min(start + batch_size, len(frames)))]
            if cell.detector == "gt":
                dets = [gt_detections(s.gt, i + 1) for i, _ in batch]
            else:
                dets = [Detections(r.boxes, r.scores, r.labels) if r is not None else Detections.empty()
                        for r in detect_frames(predictor, batch, geometry)]
            for (_, img), d in zip(batch, dets):
                n_dets += len(d.scores)
                tracked.append(tracker.update(d, img))
        part = evaluate_sequence(s.gt, tracks_to_mot(tracked), num_frames=len(frames))
        partials.append(part)
        n_frames += len(frames)
    m = summarize(combine(partials))
    fam = "clean" if kind == "clean" else ("compression" if kind == "compression" else family(cell.corruption))
    row = {"model": cell.model, "detector": cell.detector, "condition": cell.corruption, "kind": kind,
           "family": fam, "severity": cell.severity, "codec": extra.get("codec"), "crf": extra.get("crf"),
           "seed": seed, "sequences": len(seqs), "frames": n_frames, "detections": n_dets,
           **{k: float(m[k]) for k in ("HOTA", "DetA", "AssA", "IDF1", "MOTA")}, "IDSW": int(m["IDSW"]),
           "bitrate_kbps": extra.get("bitrate_kbps"), "psnr_db": extra.get("psnr_db"),
           "wall_s": time.perf_counter() - t0}
    return TrackingCellResult(row)


class TrackingCellWorker:
    """One model replica holding the sequences; ``run_cell(cell)`` tracks a whole cell and writes
    its row as the cell's own part of ``tracking_robustness``."""

    def __init__(self, run, model_config, category_ids, postprocess, geometry, mot_root: str, track_config,
                 seed: int, batch_size: int, torch_threads: int | None, max_frames: int | None = None,
                 preset: str = "medium", **_: Any):
        from cvray.predict.engine import ModelFactory, Predictor

        self.run, self.geometry, self.track_config, self.seed = run, geometry, track_config, seed
        self.batch_size, self.preset = batch_size, preset
        self.seqs = load_sequences(mot_root, max_frames=max_frames)
        self.predictor = Predictor(ModelFactory(model_config), postprocess_cfg=postprocess,
                                   category_ids=category_ids, num_threads=torch_threads)

    def run_cell(self, cell: TrackCell) -> dict[str, Any]:
        from cvray.robustness.records import track_cell_part, tracking_rows_table

        res = run_tracking_cell(cell, seqs=self.seqs, predictor=self.predictor, geometry=self.geometry,
                                track_config=self.track_config, seed=self.seed, batch_size=self.batch_size,
                                preset=self.preset)
        self.run.write_table("tracking_robustness", tracking_rows_table([res.row]), part=track_cell_part(cell))
        return res.row
