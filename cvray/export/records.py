"""The tables of ``cvray export onnx``:

* ``export_parity`` -- one row per exported variant (``fp32``, ``int8``): detection-level parity
  against the eager torch model on the same images, the tolerances and the verdict, and the
  latency of eager vs onnxruntime;
* ``int8_deltas`` -- FP32 vs INT8 (both ONNX) per corruption x severity of the suite (plus the
  clean cell, severity 0): box AP / AP50, small-object recall (COCO ``ARs``), mask AP, each with
  its INT8 - FP32 delta, and the corruption's rPC (mean over its severities / clean AP);
* ``int8_tracking_deltas`` -- the same on MOT sequences (``--suite-mot``): HOTA, IDF1, MOTA and ID
  switches of the tracker fed by each variant, per condition.
"""
from __future__ import annotations

import pyarrow as pa

from cvray.runs.tables import declare

__all__ = ["DELTA_METRICS", "EXPORT_PARITY_SCHEMA", "INT8_DELTAS_SCHEMA", "INT8_TRACKING_DELTAS_SCHEMA",
           "TRACK_METRICS", "parity_table", "rows_table"]

EXPORT_PARITY_SCHEMA = declare("export_parity", [
    pa.field("model", pa.string()),
    pa.field("variant", pa.string()),            # fp32 | int8
    pa.field("arch", pa.string()),
    pa.field("opset", pa.int64()),
    pa.field("images", pa.int64()),
    pa.field("input_height", pa.int64()),
    pa.field("input_width", pa.int64()),
    pa.field("eager_detections", pa.int64()),
    pa.field("onnx_detections", pa.int64()),
    pa.field("matched", pa.int64()),
    pa.field("match_rate", pa.float64()),
    pa.field("max_box_px", pa.float64()),
    pa.field("mean_box_px", pa.float64()),
    pa.field("max_score_delta", pa.float64()),
    pa.field("mean_score_delta", pa.float64()),
    pa.field("mask_iou_min", pa.float64()),
    pa.field("mask_iou_mean", pa.float64()),
    pa.field("tolerance_on", pa.string()),       # max (the worst matched pair: FP32) | mean (INT8)
    pa.field("tol_match_rate", pa.float64()),
    pa.field("tol_box_px", pa.float64()),
    pa.field("tol_score", pa.float64()),
    pa.field("tol_mask_iou", pa.float64()),
    pa.field("passed", pa.bool_()),
    pa.field("failures", pa.string()),
    pa.field("eager_p50_ms", pa.float64()),
    pa.field("eager_p95_ms", pa.float64()),
    pa.field("onnx_p50_ms", pa.float64()),
    pa.field("onnx_p95_ms", pa.float64()),
    pa.field("speedup_p50", pa.float64()),       # eager p50 / onnx p50
    pa.field("threads", pa.int64()),
    pa.field("provider", pa.string()),
    pa.field("model_bytes", pa.int64()),
], version=1)

#: (column stem, COCO stat) of the detection suite
DELTA_METRICS = (("bbox_AP", "bbox_AP"), ("bbox_AP50", "bbox_AP50"), ("bbox_ARs", "bbox_ARs"),
                 ("segm_AP", "segm_AP"))


def _triple(stem: str, typ=pa.float64()) -> list[pa.Field]:
    return [pa.field(f"fp32_{stem}", typ), pa.field(f"int8_{stem}", typ), pa.field(f"delta_{stem}", typ)]


INT8_DELTAS_SCHEMA = declare("int8_deltas", [
    pa.field("model", pa.string()),
    pa.field("corruption", pa.string()),         # clean | a corruption name
    pa.field("family", pa.string()),
    pa.field("severity", pa.int64()),            # 0 for clean
    pa.field("seed", pa.int64()),
    pa.field("images", pa.int64()),
    *(f for stem, _ in DELTA_METRICS for f in _triple(stem)),
    *_triple("rPC"),                             # the corruption's bbox rPC (same on each of its severities)
    pa.field("fp32_detections", pa.int64()),
    pa.field("int8_detections", pa.int64()),
], version=1)

TRACK_METRICS = ("HOTA", "IDF1", "MOTA")

INT8_TRACKING_DELTAS_SCHEMA = declare("int8_tracking_deltas", [
    pa.field("model", pa.string()),
    pa.field("condition", pa.string()),          # clean | a corruption name
    pa.field("family", pa.string()),
    pa.field("severity", pa.int64()),
    pa.field("seed", pa.int64()),
    pa.field("sequences", pa.int64()),
    pa.field("frames", pa.int64()),
    *(f for m in TRACK_METRICS for f in _triple(m)),
    *_triple("IDSW", pa.int64()),
], version=1)


def rows_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([{f: r.get(f) for f in schema.names} for r in rows], schema=schema)


def parity_table(rows: list[dict]) -> pa.Table:
    return rows_table(rows, EXPORT_PARITY_SCHEMA)
