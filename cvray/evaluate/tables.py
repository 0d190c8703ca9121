"""Declared schemas of the evaluation run's tables (``cvray eval --save``, see docs/results.md).

Column types are those the rows have always had (ints as int64, floats as float64); ``null``
``category_id`` in ``confusion`` is the background row/column.
"""
from __future__ import annotations

import pyarrow as pa

from cvray.runs.tables import declare

__all__ = ["COCO_STATS_SCHEMA", "CONFIDENCE_CURVES_SCHEMA", "CONFUSION_SCHEMA", "ERRORS_SCHEMA",
           "ERROR_PER_CLASS_SCHEMA", "ERROR_PER_SIZE_SCHEMA", "ERROR_SUMMARY_SCHEMA", "PER_CLASS_SCHEMA",
           "PR_CURVES_SCHEMA", "EVAL_SCHEMAS", "rows_to_table"]

_i, _f, _s = pa.int64(), pa.float64(), pa.string()

COCO_STATS_SCHEMA = declare("coco_stats", [pa.field("iou_type", _s), pa.field("stat", _s),
                                           pa.field("value", _f)])
PER_CLASS_SCHEMA = declare("per_class", [pa.field("category_id", _i), pa.field("name", _s),
                                         pa.field("AP", _f), pa.field("AP50", _f), pa.field("VOC_AP50", _f)])
PR_CURVES_SCHEMA = declare("pr_curves", [pa.field("category_id", _i), pa.field("iou", _f),
                                         pa.field("recall", _f), pa.field("precision", _f)])
CONFIDENCE_CURVES_SCHEMA = declare("confidence_curves", [
    pa.field("category_id", _i), pa.field("threshold", _f), pa.field("precision", _f),
    pa.field("recall", _f), pa.field("f1", _f), pa.field("detections", _i), pa.field("tp", _i)])
CONFUSION_SCHEMA = declare("confusion", [pa.field("true_category_id", _i),
                                         pa.field("pred_category_id", _i), pa.field("count", _i)])
ERRORS_SCHEMA = declare("errors", [
    pa.field("image_id", _i), pa.field("type", _s), pa.field("result_index", _i), pa.field("gt_id", _i),
    pa.field("category_id", _i), pa.field("gt_category_id", _i), pa.field("score", _f),
    pa.field("iou", _f), pa.field("size", _s), pa.field("gt_taken", pa.bool_())])
ERROR_SUMMARY_SCHEMA = declare("error_summary", [pa.field("type", _s), pa.field("count", _i),
                                                 pa.field("dAP", _f)])
ERROR_PER_CLASS_SCHEMA = declare("error_per_class", [pa.field("category_id", _i), pa.field("type", _s),
                                                     pa.field("count", _i), pa.field("dAP", _f)])
ERROR_PER_SIZE_SCHEMA = declare("error_per_size", [pa.field("size", _s), pa.field("type", _s),
                                                   pa.field("count", _i), pa.field("dAP", _f)])

EVAL_SCHEMAS = {s.metadata[b"cvray.table"].decode(): s for s in (
    COCO_STATS_SCHEMA, PER_CLASS_SCHEMA, PR_CURVES_SCHEMA, CONFIDENCE_CURVES_SCHEMA, CONFUSION_SCHEMA,
    ERRORS_SCHEMA, ERROR_SUMMARY_SCHEMA, ERROR_PER_CLASS_SCHEMA, ERROR_PER_SIZE_SCHEMA)}


def rows_to_table(name: str, rows: list[dict]) -> pa.Table:
    """Plain-dict rows as evaluation table ``name`` (missing keys null; an undeclared key raises)."""
    schema = EVAL_SCHEMAS[name]
    extra = {k for r in rows for k in r} - set(schema.names)
    if extra:
        raise ValueError(f"{name} rows have undeclared columns {sorted(extra)}: declare them in {__name__}")
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)
