"""The predictions record: one typed ``Detections`` per image and its versioned Arrow schema.

This schema is the contract other stages (tracking, robustness, evaluation, report) read from
``<run>/tables/predictions/*.parquet``; see docs/results.md, section "predictions". One Parquet
row is one input image or video frame; its detections are list columns of equal length.
Boxes are ``xyxy`` in original-image pixel coordinates; labels are dataset category ids;
masks, when present, are COCO compressed RLE (``size=[h, w]``, ``counts`` bytes); ``decision``,
when ``predict.policy`` is given, is each detection's act / observe / abstain
(:mod:`cvray.calibrate.decision`), else null.

Bump ``PREDICTIONS_SCHEMA_VERSION`` on any change a reader could notice. Version history:
``1`` the columns up to ``masks``; ``2`` adds ``decision`` (nullable). :func:`detections_from_table`
reads both (a version-1 table has no decisions); writers write the current version.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pyarrow as pa

__all__ = [
    "PREDICTIONS_SCHEMA_VERSION", "PREDICTIONS_SCHEMA", "READABLE_VERSIONS", "Detections", "RecordError",
    "detections_to_table", "detections_from_table", "to_coco_results",
]

PREDICTIONS_SCHEMA_VERSION = "2"
#: versions :func:`detections_from_table` reads (older tables lack the newer, nullable columns)
READABLE_VERSIONS = ("1", "2")
_V1_COLUMNS = ("image_id", "file_name", "frame_index", "timestamp_s", "height", "width", "boxes", "scores",
               "labels", "masks")

_RLE = pa.struct([("size", pa.list_(pa.int32(), 2)), ("counts", pa.binary())])

PREDICTIONS_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.int64(), nullable=False),
        pa.field("file_name", pa.string()),          # source URI or path relative to the input
        pa.field("frame_index", pa.int64()),         # video frames only, else null
        pa.field("timestamp_s", pa.float64()),       # video frames only, else null
        pa.field("height", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("boxes", pa.list_(pa.list_(pa.float64(), 4)), nullable=False),  # xyxy, pixels
        pa.field("scores", pa.list_(pa.float64()), nullable=False),
        pa.field("labels", pa.list_(pa.int32()), nullable=False),                # category ids
        pa.field("masks", pa.list_(_RLE)),           # null when the model has no mask head
        pa.field("decision", pa.list_(pa.string())),  # act|observe|abstain per detection; null without a policy
    ],
    metadata={b"cvray.table": b"predictions", b"cvray.schema_version": PREDICTIONS_SCHEMA_VERSION.encode()},
)


class RecordError(ValueError):
    """A Detections record or predictions table that breaks the schema (names the image)."""


@dataclass
class Detections:
    """Detections for one image. Arrays: boxes (N, 4) float64 xyxy, scores (N,), labels (N,)."""

    image_id: int
    height: int
    width: int
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: list[dict] | None = None  # COCO RLE dicts {"size": [h, w], "counts": bytes}
    file_name: str | None = None
    frame_index: int | None = None
    timestamp_s: float | None = None
    decisions: list[str] | None = None  # act / observe / abstain per detection (predict.policy), else None
    extra: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # float64: evaluation from Parquet must reproduce evaluation from JSON to 1e-9
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int32).reshape(-1)
        n = len(self.boxes)
        if len(self.scores) != n or len(self.labels) != n:
            raise RecordError(f"image_id={self.image_id}: boxes/scores/labels lengths "
                              f"{n}/{len(self.scores)}/{len(self.labels)} differ")
        if self.masks is not None and len(self.masks) != n:
            raise RecordError(f"image_id={self.image_id}: {len(self.masks)} masks for {n} boxes")
        if self.decisions is not None:
            self.decisions = [str(d) for d in self.decisions]
            if len(self.decisions) != n:
                raise RecordError(f"image_id={self.image_id}: {len(self.decisions)} decisions for {n} boxes")

    def __len__(self) -> int:
        return len(self.boxes)

    def is_finite(self) -> bool:
        """False when any box coordinate or score is NaN/inf (a broken forward pass)."""
        return bool(np.isfinite(self.boxes).all() and np.isfinite(self.scores).all())

    def select(self, keep: np.ndarray) -> "Detections":
        """A new record with only the detections at ``keep`` (indices or boolean mask)."""
        keep = np.asarray(keep)
        if keep.dtype == bool:
            keep = np.flatnonzero(keep)
        masks = None if self.masks is None else [self.masks[i] for i in keep]
        decisions = None if self.decisions is None else [self.decisions[i] for i in keep]
        return Detections(self.image_id, self.height, self.width, self.boxes[keep],
                          self.scores[keep], self.labels[keep], masks, self.file_name,
                          self.frame_index, self.timestamp_s, decisions)

    def to_row(self) -> dict:
        masks = None
        if self.masks is not None:
            masks = [{"size": [int(s) for s in m["size"]],
                      "counts": m["counts"].encode() if isinstance(m["counts"], str) else m["counts"]}
                     for m in self.masks]
        return {
            "image_id": int(self.image_id), "file_name": self.file_name,
            "frame_index": None if self.frame_index is None else int(self.frame_index),
            "timestamp_s": None if self.timestamp_s is None else float(self.timestamp_s),
            "height": int(self.height), "width": int(self.width),
            "boxes": self.boxes.tolist(), "scores": self.scores.tolist(),
            "labels": self.labels.tolist(), "masks": masks,
            "decision": None if self.decisions is None else list(self.decisions),
        }

    @classmethod
    def from_row(cls, row: dict) -> "Detections":
        boxes = np.asarray(row["boxes"], dtype=np.float64).reshape(-1, 4) if len(row["boxes"]) else np.zeros((0, 4))
        masks = row.get("masks")
        if masks is not None:
            masks = [{"size": list(m["size"]), "counts": m["counts"]} for m in masks]
        return cls(int(row["image_id"]), int(row["height"]), int(row["width"]), boxes,
                   np.asarray(row["scores"], np.float64), np.asarray(row["labels"], np.int32), masks,
                   row.get("file_name"), row.get("frame_index"), row.get("timestamp_s"), row.get("decision"))

    def to_coco_results(self) -> list[dict]:
        """COCO results format (xywh boxes; RLE counts as str) for evaluation."""
        out = []
        for i in range(len(self)):
            x1, y1, x2, y2 = (float(v) for v in self.boxes[i])
            r = {"image_id": int(self.image_id), "category_id": int(self.labels[i]),
                 "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(self.scores[i])}
            if self.masks is not None:
                m = self.masks[i]
                counts = m["counts"].decode() if isinstance(m["counts"], bytes) else m["counts"]
                r["segmentation"] = {"size": [int(s) for s in m["size"]], "counts": counts}
            out.append(r)
        return out


def detections_to_table(records: Iterable[Detections]) -> pa.Table:
    """Arrow table with :data:`PREDICTIONS_SCHEMA` (one row per image)."""
    return pa.Table.from_pylist([d.to_row() for d in records], schema=PREDICTIONS_SCHEMA)


def detections_from_table(table: pa.Table) -> list[Detections]:
    """Inverse of :func:`detections_to_table`; checks the schema version first.

    Reads every version in :data:`READABLE_VERSIONS`: a version-1 table (before ``decision``)
    gives records with ``decisions`` None."""
    meta = table.schema.metadata or {}
    version = meta.get(b"cvray.schema_version", b"").decode()
    if meta.get(b"cvray.table") == b"predictions" and version not in READABLE_VERSIONS:
        raise RecordError(f"predictions schema version {version!r}; this cvray reads "
                          f"{', '.join(repr(v) for v in READABLE_VERSIONS)}")
    missing = [c for c in _V1_COLUMNS if c not in table.column_names]
    if missing:
        raise RecordError(f"predictions table lacks columns {missing}")
    return [Detections.from_row(r) for r in table.to_pylist()]


def to_coco_results(records: Iterable[Detections]) -> list[dict]:
    """Flatten many records into one COCO results list."""
    return [r for d in records for r in d.to_coco_results()]
