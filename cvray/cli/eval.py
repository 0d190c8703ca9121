"""``cvray eval --gt GT.json --pred PRED.json|PRED.parquet [--iou-type bbox|segm] [--json]``.

Prints the 12 COCO stats (with ``--json``: one object with exactly those 12 keys at top level and
everything else under ``details``). Every evaluation is a run (its manifest: stats, config and the
ground truth's fingerprint); with ``--save`` the run also gets every table (stats, per-class AP,
error buckets, confusion matrix, PR curves as Parquet) and plot (PNG) that ``cvray report``
renders.
"""
from __future__ import annotations

import argparse

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config

__all__ = ["register", "run_eval"]


def register(sub) -> None:
    p = sub.add_parser("eval", help="COCO box/mask AP of predictions against ground truth")
    p.add_argument("--gt", required=True, help="COCO ground-truth JSON (local or s3://)")
    p.add_argument("--pred", required=True,
                   help="COCO results JSON, predictions Parquet file/folder, or a predict run folder")
    p.add_argument("--iou-type", choices=("bbox", "segm"), default="bbox")
    p.add_argument("--images-root", default=None,
                   help="images of the GT (for failure overlays with --save; default <gt>/../../images)")
    p.add_argument("--save", action="store_true",
                   help="also write the tables + plots into the eval run (for `cvray report`)")
    add_common_args(p)
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from cvray.data.coco import DatasetError
    from cvray.evaluate.loaders import PredictionsError
    from cvray.evaluate.workflow import eval_fingerprint, prepare_eval, run_eval as _run
    from cvray.runs import run_context

    cfg = load_cli_config(args)
    try:
        inputs = prepare_eval(gt=args.gt, pred=args.pred, iou_type=args.iou_type, save=args.save,
                              images_root=args.images_root)
    except (DatasetError, PredictionsError) as exc:
        raise CliError(str(exc)) from exc
    with run_context("eval", cfg, argv=getattr(args, "argv", None),
                     dataset=lambda: eval_fingerprint(inputs)) as run:
        summary = _run(run, cfg.eval, inputs)
    summary["details"]["run_id"] = run.id
    emit(summary, args, title=f"COCO {args.iou_type} evaluation")
    return 0
