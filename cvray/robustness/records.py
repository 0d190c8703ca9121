"""The ``robustness`` table: one row per (model, corruption, severity) cell, one part per cell.

A cell's part is named after the cell (:func:`cell_part`), so a rerun finds the finished cells by
their parts and a retried cell replaces its own part -- never a duplicate row, never a lost one.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from cvray.runs.tables import declare

__all__ = ["CLEAN", "COCO_STATS", "Cell", "ROBUSTNESS_SCHEMA", "TRACKING_ROBUSTNESS_SCHEMA", "cell_part",
           "cell_rows_table", "track_cell_part", "tracking_rows_table"]

CLEAN = "clean"  # the uncorrupted cell (severity 0): P of the benchmark
COCO_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl")

ROBUSTNESS_SCHEMA = declare("robustness", [
    pa.field("model", pa.string()),
    pa.field("corruption", pa.string()),
    pa.field("family", pa.string()),
    pa.field("severity", pa.int64()),
    pa.field("seed", pa.int64()),
    pa.field("images", pa.int64()),
    pa.field("failed_images", pa.int64()),
    pa.field("detections", pa.int64()),
    pa.field("wall_s", pa.float64()),
    *(pa.field(f"bbox_{s}", pa.float64()) for s in COCO_STATS),
    *(pa.field(f"segm_{s}", pa.float64()) for s in COCO_STATS),
], version=1)


@dataclass(frozen=True)
class Cell:
    """One unit of work of a suite: a model's AP on every image under one corruption x severity."""

    model: str
    corruption: str
    severity: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.model, self.corruption, self.severity)


def cell_part(cell: Cell) -> str:
    """The part name of a cell's row (file-name safe, unique per cell)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", cell.model).strip("-") or "model"
    return f"{safe}__{cell.corruption}__s{cell.severity}"


@dataclass
class CellResult:
    model: str
    corruption: str
    family: str
    severity: int
    seed: int
    images: int
    failed_images: int
    detections: int
    wall_s: float
    stats: dict[str, float | None] = field(default_factory=dict)  # bbox_AP ... segm_APl
    issues: list[dict] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("stats", "issues")}
        for f in ROBUSTNESS_SCHEMA.names:
            if f.startswith(("bbox_", "segm_")):
                d[f] = self.stats.get(f)
        return d


def cell_rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{f: r.get(f) for f in ROBUSTNESS_SCHEMA.names} for r in rows],
                                schema=ROBUSTNESS_SCHEMA)


# ----------------------------------------------------------------------------- tracking under corruption

TRACKING_ROBUSTNESS_SCHEMA = declare("tracking_robustness", [
    pa.field("model", pa.string()),
    pa.field("detector", pa.string()),       # model | gt (ground-truth boxes: the tracker alone)
    pa.field("condition", pa.string()),      # clean | corruption name | compression tier (h264_crf23)
    pa.field("kind", pa.string()),           # clean | corruption | compression
    pa.field("family", pa.string()),
    pa.field("severity", pa.int64()),        # 1-5; 0 for clean and compression
    pa.field("codec", pa.string()),
    pa.field("crf", pa.int64()),
    pa.field("seed", pa.int64()),
    pa.field("sequences", pa.int64()),
    pa.field("frames", pa.int64()),
    pa.field("detections", pa.int64()),
    pa.field("HOTA", pa.float64()),
    pa.field("DetA", pa.float64()),
    pa.field("AssA", pa.float64()),
    pa.field("IDF1", pa.float64()),
    pa.field("MOTA", pa.float64()),
    pa.field("IDSW", pa.int64()),
    pa.field("bitrate_kbps", pa.float64()),  # compression: the codec stream's bits / duration
    pa.field("psnr_db", pa.float64()),       # compression: decoded vs original frames
    pa.field("wall_s", pa.float64()),
], version=1)


def track_cell_part(cell) -> str:
    """The part name of a tracking cell's row (file-name safe, unique per cell)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", cell.model).strip("-") or "model"
    return f"{safe}__{cell.detector}__{cell.corruption}__s{cell.severity}"


def tracking_rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{f: r.get(f) for f in TRACKING_ROBUSTNESS_SCHEMA.names} for r in rows],
                                schema=TRACKING_ROBUSTNESS_SCHEMA)
