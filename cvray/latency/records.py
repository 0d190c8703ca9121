"""The ``latency`` table: one row per (setting, scene, stage, phase) -- phase ``timed`` or
``warmup`` -- with p50 / p95 / p99 / mean in milliseconds and FPS."""
from __future__ import annotations

import pyarrow as pa

from cvray.runs.tables import declare

__all__ = ["LATENCY_SCHEMA", "latency_table"]

LATENCY_SCHEMA = declare("latency", [
    pa.field("model", pa.string()),
    pa.field("setting", pa.string()),
    pa.field("device", pa.string()),
    pa.field("input_size", pa.int64()),
    pa.field("batch_size", pa.int64()),
    pa.field("threads", pa.int64()),
    pa.field("scene", pa.string()),
    pa.field("phase", pa.string()),
    pa.field("stage", pa.string()),
    pa.field("n", pa.int64()),
    pa.field("mean_ms", pa.float64()),
    pa.field("p50_ms", pa.float64()),
    pa.field("p95_ms", pa.float64()),
    pa.field("p99_ms", pa.float64()),
    pa.field("fps", pa.float64()),
    pa.field("detections_per_image", pa.float64()),
], version=1)


def latency_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([{f: r.get(f) for f in LATENCY_SCHEMA.names} for r in rows], schema=LATENCY_SCHEMA)
