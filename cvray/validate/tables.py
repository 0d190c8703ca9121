"""Declared schemas of the validation run's own tables (``issues`` and ``leakage_pairs`` are
declared in :mod:`cvray.runs.issues` and :mod:`cvray.validate.leakage`)."""
from __future__ import annotations

import pyarrow as pa

from cvray.evaluate.coco import STAT_KEYS
from cvray.runs.tables import declare

__all__ = ["BASELINES_SCHEMA", "IMAGES_SCHEMA", "baselines_to_table"]

# one row per decoded image record (Ray mode): what was read and its hashes
IMAGES_SCHEMA = declare("images", [
    pa.field("key", pa.int64()), pa.field("split", pa.string()), pa.field("image_id", pa.int64()),
    pa.field("file", pa.string()), pa.field("group", pa.string()), pa.field("ok", pa.bool_()),
    pa.field("phash", pa.int64()), pa.field("sha", pa.string()), pa.field("width", pa.int64()),
    pa.field("height", pa.int64()), pa.field("format", pa.string()), pa.field("mode", pa.string()),
])

# one row per (baseline, scored split): the 12 COCO bbox stats of a trivial predictor
BASELINES_SCHEMA = declare("baselines", [pa.field("baseline", pa.string()), pa.field("split", pa.string())]
                           + [pa.field(k, pa.float64()) for k in STAT_KEYS])


def baselines_to_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in BASELINES_SCHEMA} for r in rows],
                                schema=BASELINES_SCHEMA)
