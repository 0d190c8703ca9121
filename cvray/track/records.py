"""Typed records of the tracker: detections in, tracks out, and their versioned Arrow schemas."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyarrow as pa

__all__ = ["ASSOCIATION_SCHEMA", "Detections", "FrameTracks", "METRICS_SCHEMA", "SEQUENCES_SCHEMA",
           "TRACKS_SCHEMA", "TRACKS_SCHEMA_VERSION", "metrics_to_table", "sequences_to_table",
           "tracks_from_arrow", "tracks_to_arrow", "tracks_to_mot"]

TRACKS_SCHEMA_VERSION = "1"
TRACKS_SCHEMA = pa.schema(
    [
        pa.field("sequence", pa.string()),
        pa.field("frame", pa.int32()),
        pa.field("track_id", pa.int64()),
        pa.field("x", pa.float32()), pa.field("y", pa.float32()),
        pa.field("w", pa.float32()), pa.field("h", pa.float32()),
        pa.field("score", pa.float32()),
        pa.field("class_id", pa.int32()),
        pa.field("state", pa.string()),
    ],
    metadata={"cvray.table": "tracks", "cvray.schema_version": TRACKS_SCHEMA_VERSION},
)
ASSOCIATION_SCHEMA = pa.schema(
    [
        pa.field("sequence", pa.string()),
        pa.field("frame", pa.int32()),
        pa.field("stage", pa.string()),
        pa.field("track_id", pa.int64()),
        pa.field("det_index", pa.int32()),
        pa.field("iou", pa.float32()),
        pa.field("app_distance", pa.float32()),
        pa.field("cost", pa.float32()),
        pa.field("matched", pa.bool_()),
        pa.field("gated_out", pa.int32()),
    ],
    metadata={"cvray.table": "track_associations", "cvray.schema_version": "1"},
)

# Run tables of ``cvray track`` / ``cvray track eval``: one row per tracked sequence, and one row
# of MOT metrics per sequence plus ``combined`` (percentages as floats, counts as exact ints).
SEQUENCES_SCHEMA = pa.schema(
    [
        pa.field("sequence", pa.string()),
        pa.field("frames", pa.int64()),
        pa.field("detections", pa.int64()),
        pa.field("boxes", pa.int64()),
        pa.field("tracks", pa.int64()),
        pa.field("tracking_fps", pa.float64()),
        pa.field("txt", pa.string()),
        pa.field("review_video", pa.string()),
    ],
    metadata={"cvray.table": "sequences", "cvray.schema_version": "1"},
)
# MOTA ... FN are CLEAR as TrackEval computes it; ``devkit_*`` the same metrics in the old devkit
# convention (py-motmetrics), the ``devkit`` block of a metric row (v2 added them).
_FLOAT_METRICS = ("MOTA", "MOTP", "IDF1", "IDP", "IDR", "HOTA", "DetA", "AssA", "LocA")
_COUNT_METRICS = ("IDSW", "Frag", "MT", "PT", "ML", "FP", "FN")
_DEVKIT_FLOAT_METRICS = ("MOTA", "MOTP")
_DEVKIT_COUNT_METRICS = ("IDSW", "Frag", "MT", "PT", "ML", "FP", "FN")
METRICS_SCHEMA = pa.schema(
    [pa.field("sequence", pa.string())]
    + [pa.field(k, pa.float64()) for k in _FLOAT_METRICS]
    + [pa.field(k, pa.int64()) for k in _COUNT_METRICS]
    + [pa.field(f"devkit_{k}", pa.float64()) for k in _DEVKIT_FLOAT_METRICS]
    + [pa.field(f"devkit_{k}", pa.int64()) for k in _DEVKIT_COUNT_METRICS],
    metadata={"cvray.table": "metrics", "cvray.schema_version": "2"},
)


def sequences_to_table(rows: list[dict]) -> pa.Table:
    """Per-sequence tracking summaries (plain dicts, extra keys ignored) as a ``sequences`` table."""
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in SEQUENCES_SCHEMA} for r in rows],
                                schema=SEQUENCES_SCHEMA)


def metrics_to_table(metrics: dict[str, dict]) -> pa.Table:
    """``{sequence: metric row}`` (``combined`` included) as a ``metrics`` table; a row's ``devkit``
    block becomes the ``devkit_*`` columns."""
    rows = []
    for seq, row in metrics.items():
        flat = {**row, **{f"devkit_{k}": v for k, v in (row.get("devkit") or {}).items()}, "sequence": seq}
        rows.append({f.name: flat.get(f.name) for f in METRICS_SCHEMA})
    return pa.Table.from_pylist(rows, schema=METRICS_SCHEMA)


@dataclass
class Detections:
    """Detections of one frame: ``boxes`` (N, 4) xyxy pixels, ``scores`` (N,), ``classes`` (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray = field(default=None)  # type: ignore[assignment]
    embeddings: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        n = len(self.boxes)
        self.classes = (np.zeros(n, np.int64) if self.classes is None
                        else np.asarray(self.classes, dtype=np.int64).reshape(-1))
        if len(self.scores) != n or len(self.classes) != n:
            raise ValueError(f"Detections: {n} boxes but {len(self.scores)} scores, {len(self.classes)} classes")
        if self.embeddings is not None and len(self.embeddings) != n:
            raise ValueError(f"Detections: {n} boxes but {len(self.embeddings)} embeddings")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0))

    @classmethod
    def from_mot(cls, rows: np.ndarray) -> Detections:
        """From MOTChallenge det rows ``frame,id,x,y,w,h,conf,...`` (conf is the score)."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, rows.shape[1] if len(rows) else 10)
        xy, wh = rows[:, 2:4], rows[:, 4:6]
        return cls(np.concatenate([xy, xy + wh], axis=1), rows[:, 6],
                   np.clip(rows[:, 7], 0, None).astype(np.int64) if rows.shape[1] > 7 else None)

    def select(self, idx: np.ndarray) -> Detections:
        return Detections(self.boxes[idx], self.scores[idx], self.classes[idx],
                          None if self.embeddings is None else self.embeddings[idx])


@dataclass
class FrameTracks:
    """Tracker output of one frame. ``prior_boxes`` are the Kalman predictions before the update
    (for review videos), ``det_index`` the matched detection (-1 when coasting)."""

    frame: int
    ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    states: list[str]
    prior_boxes: np.ndarray
    det_index: np.ndarray
    #: tracks alive but not output this frame (tentative, lost: coasting on the prediction), for
    #: review videos: ``(ids, boxes xyxy, states)``, or a zero-argument function returning them
    #: (the tracker defers that work until a review video asks); read through :attr:`others`
    _others: tuple[np.ndarray, np.ndarray, list[str]] | Callable[[], tuple] | None = field(
        default=None, repr=False)

    @property
    def others(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        if callable(self._others):
            self._others = self._others()
        if self._others is None:
            return np.zeros(0, np.int64), np.zeros((0, 4)), []
        return self._others

    def __len__(self) -> int:
        return len(self.ids)

    def to_mot(self) -> np.ndarray:
        """``(N, 10)`` MOTChallenge rows ``frame,id,x,y,w,h,score,-1,-1,-1``."""
        n = len(self.ids)
        out = np.full((n, 10), -1.0)
        out[:, 0] = self.frame
        out[:, 1] = self.ids
        out[:, 2:4] = self.boxes[:, :2]
        out[:, 4:6] = self.boxes[:, 2:] - self.boxes[:, :2]
        out[:, 6] = self.scores
        return out


def tracks_to_mot(frames: list[FrameTracks]) -> np.ndarray:
    rows = [f.to_mot() for f in frames if len(f)]
    return np.concatenate(rows) if rows else np.zeros((0, 10))


def tracks_to_arrow(frames: list[FrameTracks], sequence: str) -> pa.Table:
    """The ``tracks`` table of a sequence (one row per box)."""
    mot = tracks_to_mot(frames)
    states = [s for f in frames for s in f.states]
    classes = np.concatenate([f.classes for f in frames]) if frames else np.zeros(0)
    return pa.table(
        {
            "sequence": pa.array([sequence] * len(mot), pa.string()),
            "frame": pa.array(mot[:, 0].astype(np.int32)),
            "track_id": pa.array(mot[:, 1].astype(np.int64)),
            "x": pa.array(mot[:, 2].astype(np.float32)), "y": pa.array(mot[:, 3].astype(np.float32)),
            "w": pa.array(mot[:, 4].astype(np.float32)), "h": pa.array(mot[:, 5].astype(np.float32)),
            "score": pa.array(mot[:, 6].astype(np.float32)),
            "class_id": pa.array(np.asarray(classes, dtype=np.int32)),
            "state": pa.array(states, pa.string()),
        },
        schema=TRACKS_SCHEMA,
    )


def tracks_from_arrow(table: pa.Table) -> dict[str, np.ndarray]:
    """``{sequence: (N, 10) MOT rows}`` from a tracks table (any schema version 1 reader)."""
    version = (table.schema.metadata or {}).get(b"cvray.schema_version", b"1").decode()
    if version != TRACKS_SCHEMA_VERSION:
        raise ValueError(f"tracks table schema version {version} is not supported (want {TRACKS_SCHEMA_VERSION})")
    cols = {c: table.column(c).to_numpy() for c in ("frame", "track_id", "x", "y", "w", "h", "score")}
    seqs = table.column("sequence").to_numpy(zero_copy_only=False)
    out: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(seqs):
        m = seqs == name
        rows = np.full((int(m.sum()), 10), -1.0)
        for j, c in enumerate(("frame", "track_id", "x", "y", "w", "h", "score")):
            rows[:, j] = cols[c][m]
        out[str(name)] = rows
    return out
