"""The drift tables of ``cvray predict`` / ``cvray track`` (``--drift``), declared once.

``drift``: one row per (source, window, feature) compared with the source's reference window --
PSI (with its no-shift noise floor), KS, the medians / rates either side, and the verdicts.
``drift_alerts``: one row per alert a rule raised (after its rate limit), with its evidence.
``drift_windows``: one row per closed window, the reference window included: frames and the
window's scalars (mean confidence, empty / abstention / fragmentation rate, frame drops, max gap),
the time series the report plots.
"""
from __future__ import annotations

import json

import pyarrow as pa

from cvray.runs.tables import declare

__all__ = ["DRIFT_SCHEMA", "DRIFT_ALERTS_SCHEMA", "DRIFT_WINDOWS_SCHEMA", "WINDOW_SCALARS",
           "drift_table", "drift_alerts_table", "drift_windows_table"]

DRIFT_SCHEMA = declare("drift", [
    pa.field("source", pa.string()),
    pa.field("window_index", pa.int64()),
    pa.field("window_start_s", pa.float64()),
    pa.field("window_end_s", pa.float64()),
    pa.field("frames", pa.int64()),
    pa.field("feature", pa.string()),
    pa.field("kind", pa.string()),
    pa.field("stat", pa.string()),
    pa.field("reference_stat", pa.float64()),
    pa.field("current_stat", pa.float64()),
    pa.field("psi", pa.float64()),
    pa.field("psi_noise_floor", pa.float64()),
    pa.field("psi_level", pa.string()),
    pa.field("ks_statistic", pa.float64()),
    pa.field("ks_pvalue", pa.float64()),
    pa.field("shifted", pa.bool_()),
    pa.field("ks_shifted", pa.bool_()),
    pa.field("note", pa.string()),
], version=1)

DRIFT_ALERTS_SCHEMA = declare("drift_alerts", [
    pa.field("source", pa.string()),
    pa.field("rule", pa.string()),
    pa.field("window_index", pa.int64()),
    pa.field("window_start_s", pa.float64()),
    pa.field("window_end_s", pa.float64()),
    pa.field("signals", pa.string()),
    pa.field("message", pa.string()),
], version=1)

# the scalars a window row may carry (cvray.drift.window.WindowAccumulator.compute)
WINDOW_SCALARS = ("mean_confidence", "empty_rate", "abstention_rate", "fragmentation_rate",
                  "frame_drops", "max_gap_s", "drop_rate")

DRIFT_WINDOWS_SCHEMA = declare("drift_windows", [
    pa.field("source", pa.string()),
    pa.field("window_index", pa.int64()),
    pa.field("window_start_s", pa.float64()),
    pa.field("window_end_s", pa.float64()),
    pa.field("frames", pa.int64()),
    pa.field("is_reference", pa.bool_()),
    *[pa.field(k, pa.float64()) for k in WINDOW_SCALARS],
], version=1)


def _table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([{f: r.get(f) for f in schema.names} for r in rows], schema=schema)


def drift_table(rows: list[dict]) -> pa.Table:
    return _table(rows, DRIFT_SCHEMA)


def drift_alerts_table(rows: list[dict]) -> pa.Table:
    return _table([{**r, "signals": json.dumps(r["signals"], sort_keys=True)} for r in rows], DRIFT_ALERTS_SCHEMA)


def drift_windows_table(rows: list[dict]) -> pa.Table:
    return _table(rows, DRIFT_WINDOWS_SCHEMA)
