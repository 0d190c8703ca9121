"""The table contract: every run table has a declared, versioned Arrow schema.

A schema names its table and version in its metadata (``cvray.table``, ``cvray.schema_version``,
see :func:`declare`); :meth:`cvray.runs.Run.write_table` refuses a table without both, so an
inferred ``pa.Table.from_pylist(rows)`` cannot become a result by accident. :data:`RUN_TABLES`
lists every declared table of every stage (``docs/results.md`` is checked against it by a test).
"""
from __future__ import annotations

import importlib
from typing import Iterable

import pyarrow as pa

__all__ = ["RUN_TABLES", "TABLE_KEY", "TableContractError", "VERSION_KEY",
           "check_table", "declare", "declared_schema", "table_identity"]

TABLE_KEY = "cvray.table"
VERSION_KEY = "cvray.schema_version"

# table name -> "module:SCHEMA" of its declared schema, by the stage that writes it
RUN_TABLES: dict[str, str] = {
    "issues": "cvray.runs.issues:ISSUE_SCHEMA",
    "dataset_summary": "cvray.data.summary:DATASET_SUMMARY_SCHEMA",
    "class_counts": "cvray.data.summary:CLASS_COUNTS_SCHEMA",
    "leakage_pairs": "cvray.validate.leakage:PAIR_SCHEMA",
    "images": "cvray.validate.tables:IMAGES_SCHEMA",
    "baselines": "cvray.validate.tables:BASELINES_SCHEMA",
    "predictions": "cvray.predict.records:PREDICTIONS_SCHEMA",
    "coco_stats": "cvray.evaluate.tables:COCO_STATS_SCHEMA",
    "per_class": "cvray.evaluate.tables:PER_CLASS_SCHEMA",
    "pr_curves": "cvray.evaluate.tables:PR_CURVES_SCHEMA",
    "confidence_curves": "cvray.evaluate.tables:CONFIDENCE_CURVES_SCHEMA",
    "confusion": "cvray.evaluate.tables:CONFUSION_SCHEMA",
    "errors": "cvray.evaluate.tables:ERRORS_SCHEMA",
    "error_summary": "cvray.evaluate.tables:ERROR_SUMMARY_SCHEMA",
    "error_per_class": "cvray.evaluate.tables:ERROR_PER_CLASS_SCHEMA",
    "error_per_size": "cvray.evaluate.tables:ERROR_PER_SIZE_SCHEMA",
    "sequences": "cvray.track.records:SEQUENCES_SCHEMA",
    "metrics": "cvray.track.records:METRICS_SCHEMA",
    # train: the columns every run has; train_curves adds one column per loss part
    # (train_curves_schema) and eval_metrics one per metric (eval_metrics_schema), same version
    "train_curves": "cvray.train.outputs:TRAIN_CURVES_SCHEMA",
    "eval_metrics": "cvray.train.outputs:EVAL_METRICS_SCHEMA",
    "per_class_ap": "cvray.train.outputs:PER_CLASS_AP_SCHEMA",
    "per_class_iou": "cvray.train.outputs:PER_CLASS_IOU_SCHEMA",
    "worker_seeds": "cvray.train.outputs:WORKER_SEEDS_SCHEMA",
    # tune: trials adds one param:<key> column per numeric searched key, trial_curves one column
    # per reported metric
    "trials": "cvray.tune.outputs:TRIALS_SCHEMA",
    "trial_curves": "cvray.tune.outputs:TRIAL_CURVES_SCHEMA",
    "robustness": "cvray.robustness.records:ROBUSTNESS_SCHEMA",
    "tracking_robustness": "cvray.robustness.records:TRACKING_ROBUSTNESS_SCHEMA",
    "latency": "cvray.latency.records:LATENCY_SCHEMA",
    "export_parity": "cvray.export.records:EXPORT_PARITY_SCHEMA",
    "int8_deltas": "cvray.export.records:INT8_DELTAS_SCHEMA",
    "int8_tracking_deltas": "cvray.export.records:INT8_TRACKING_DELTAS_SCHEMA",
    # drift: written by cvray predict / cvray track with --drift
    "drift": "cvray.drift.records:DRIFT_SCHEMA",
    "drift_alerts": "cvray.drift.records:DRIFT_ALERTS_SCHEMA",
    "drift_windows": "cvray.drift.records:DRIFT_WINDOWS_SCHEMA",
    "calibration": "cvray.calibrate.workflow:CALIBRATION_SCHEMA",
    "calibration_bins": "cvray.calibrate.workflow:CALIBRATION_BINS_SCHEMA",
    "policy_slices": "cvray.calibrate.policy_report:POLICY_SLICES_SCHEMA",
}


class TableContractError(ValueError):
    """A table without (or with the wrong) ``cvray.table`` / ``cvray.schema_version`` metadata."""


def declare(name: str, fields: Iterable[pa.Field], version: int | str = 1) -> pa.Schema:
    """A run table's schema, carrying its name and version.

    >>> declare("baselines", [pa.field("split", pa.string())]).metadata[b"cvray.table"]
    b'baselines'
    """
    return pa.schema(list(fields), metadata={TABLE_KEY: name, VERSION_KEY: str(version)})


def table_identity(schema: pa.Schema) -> tuple[str | None, str | None]:
    """(table name, schema version) from a schema's metadata (None where missing)."""
    meta = schema.metadata or {}
    name, version = meta.get(TABLE_KEY.encode()), meta.get(VERSION_KEY.encode())
    return (name.decode() if name else None, version.decode() if version else None)


def check_table(name: str, table: pa.Table) -> pa.Table:
    """``table`` if its schema declares table ``name`` with a version; else raise."""
    declared, version = table_identity(table.schema)
    if declared is None or version is None:
        raise TableContractError(
            f"table {name!r} has no {TABLE_KEY}/{VERSION_KEY} schema metadata: build it with its "
            f"declared schema (cvray.runs.tables.declare; catalogue in cvray.runs.tables.RUN_TABLES)")
    if declared != name:
        raise TableContractError(f"table {name!r} was built with the schema of table {declared!r}")
    return table


def declared_schema(name: str) -> pa.Schema:
    """The declared schema of run table ``name`` (see :data:`RUN_TABLES`)."""
    mod, _, attr = RUN_TABLES[name].partition(":")
    return getattr(importlib.import_module(mod), attr)
