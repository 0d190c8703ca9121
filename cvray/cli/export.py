"""``cvray export onnx --model RUN|CKPT [--input IMAGES|COCO_JSON] [--int8 --calibration-data COCO_JSON|IMAGES
[--suite COCO_ROOT|JSON] [--suite-mot MOT_DIR] [--corruptions ...] [--severities ...]] [--no-ray] [--json]``.

Exports the detector to ONNX (torch's legacy exporter, dynamic image height / width, batch 1),
checks it against eager torch on the same images (detection-level match rate, max box / score
deltas, mask IoU, against ``export.tol_*``) and times both; ``--int8`` adds an INT8 QDQ model
(onnxruntime static quantization calibrated on typical and corrupted images; NMS, RoiAlign and the
box decoding stay float), and ``--suite`` its AP / small-object recall / rPC deltas against FP32
per corruption x severity (``--suite-mot``: HOTA / IDF1 / ID switches). The run is a model:
``--model RUN`` or ``--model RUN:int8`` in ``predict``, ``robustness``, ``latency``, ``track``.
Exit 1 when a variant fails its parity tolerances (the files and tables are written anyway).
"""
from __future__ import annotations

import argparse

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config

_PARITY_COLS = ("variant", "match_rate", "max_box_px", "mean_box_px", "max_score_delta", "mask_iou_mean",
                "tolerance_on", "passed", "eager_p50_ms", "onnx_p50_ms", "speedup_p50")
_DELTA_COLS = ("corruption", "severity", "fp32_bbox_AP", "int8_bbox_AP", "delta_bbox_AP", "delta_bbox_ARs",
               "delta_segm_AP", "delta_rPC")


def register(sub) -> None:
    p = sub.add_parser("export", help="export a detector to ONNX (and INT8), with parity and INT8 deltas")
    es = p.add_subparsers(dest="export_cmd", metavar="FORMAT")
    o = es.add_parser("onnx", help="ONNX export, parity vs eager, latency; --int8: static INT8 + suite deltas",
                      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(o)
    o.add_argument("--model", default=None, help="a train run (folder/URI), a checkpoint, or ARCH[:BACKBONE]")
    o.add_argument("--input", default=None, help="parity / latency images: folder or COCO JSON "
                   "(default: the training run's val split)")
    o.add_argument("--categories", default=None, help="COCO JSON whose categories the model predicts")
    o.add_argument("--int8", action="store_true", help="also write an INT8 (QDQ) model")
    o.add_argument("--calibration-data", default=None, metavar="COCO_JSON|IMAGES",
                   help="images the INT8 activation ranges are calibrated on (clean + export.calibration_corruptions)")
    o.add_argument("--suite", default=None, metavar="COCO_ROOT|JSON",
                   help="FP32 vs INT8 on this split under every corruption x severity (the int8_deltas table)")
    o.add_argument("--suite-mot", default=None, metavar="MOT_DIR",
                   help="FP32 vs INT8 tracking (HOTA, IDF1, ID switches) on MOTChallenge sequences under corruption")
    o.add_argument("--corruptions", default=None, help="suite corruptions (export.corruptions): benchmark, names...")
    o.add_argument("--severities", default=None, help="suite severities (export.severities), e.g. 1-5 or 1,3")
    o.add_argument("--opset", type=int, default=None, help="ONNX opset (export.opset, default 17)")
    o.add_argument("--no-ray", action="store_true", help="run in this process instead of one Ray worker")
    o.set_defaults(func=cmd_export_onnx)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from cvray.cli.progress import Progress
    from cvray.export.workflow import prepare_export, run_export
    from cvray.runs import run_context

    extra = []
    for flag, key in (("corruptions", "corruptions"), ("severities", "severities"), ("opset", "opset")):
        if getattr(args, flag) is not None:
            extra.append(f"export.{key}={getattr(args, flag)}")
    cfg = load_cli_config(args, extra)
    if not args.model:
        raise CliError("cvray export onnx needs --model RUN|CKPT")
    inputs = prepare_export(cfg.export, cfg.predict, model=args.model, input=args.input, int8=args.int8,
                            calibration=args.calibration_data, suite=args.suite, suite_mot=args.suite_mot,
                            categories=args.categories, seed=cfg.seed)
    ray = not args.no_ray
    with run_context("export onnx", cfg, argv=args.argv, ray=ray, address=args.address,
                     dataset=inputs.dataset) as run:
        with Progress("cvray export onnx", "step", None) as progress:
            summary = run_export(run, cfg.export, inputs, ray=ray, predict=cfg.predict, track=cfg.track,
                                 on_progress=progress)
    if not getattr(args, "json", False):
        _print_tables(run)
    emit({"run": run.id, "run_uri": run.uri, **summary}, args, title="cvray export onnx")
    return 0 if summary["passed"] else 1


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def _print_tables(run) -> None:
    from rich.console import Console

    con = Console(stderr=True, highlight=False, width=140)
    track_cols = ("condition", "severity", "fp32_HOTA", "int8_HOTA", "fp32_IDSW", "int8_IDSW", "delta_IDSW")
    for table, title, cols in (("export_parity", "ONNX vs eager (parity, latency ms)", _PARITY_COLS),
                               ("int8_deltas", "FP32 vs INT8 per corruption", _DELTA_COLS),
                               ("int8_tracking_deltas", "FP32 vs INT8 tracking per corruption", track_cols)):
        if table in run.tables():
            con.print(_table(title, cols, run.read_table(table).to_pylist()))


def _table(title: str, cols, rows):
    """A rich table of ``rows`` (dicts) in ``cols``; the first column left-aligned (the label)."""
    from rich.table import Table

    t = Table(title=title, header_style="bold")
    for i, c in enumerate(cols):
        t.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[_cell(r[c]) for c in cols])
    return t
