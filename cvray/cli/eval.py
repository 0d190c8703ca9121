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


def _default_images_root(gt_uri: str) -> str | None:
    """COCO layout ``<root>/annotations/x.json`` + ``<root>/images``; None when absent."""
    import posixpath

    from cvray.io import storage

    parent = posixpath.dirname(posixpath.dirname(gt_uri.rstrip("/")))
    cand = storage.join(parent or ".", "images")
    return cand if storage.list_files(cand) else None


def run_eval(args: argparse.Namespace) -> int:
    from cvray.data.coco import load_coco
    from cvray.evaluate.coco import STAT_KEYS, CocoEvalError, coco_evaluate
    from cvray.evaluate.loaders import load_predictions

    cfg = load_cli_config(args)
    gt = load_coco(args.gt)
    preds = load_predictions(args.pred)
    if args.iou_type == "segm" and preds and "segmentation" not in preds[0]:
        raise CliError(f"{args.pred}: --iou-type segm needs mask predictions (RLE 'segmentation')")
    try:
        result = coco_evaluate(gt, preds, args.iou_type)
    except CocoEvalError as exc:
        raise CliError(f"{args.pred}: {exc}") from exc
    summary: dict = {k: result.stats[k] for k in STAT_KEYS}
    details = {"iou_type": args.iou_type, "gt": args.gt, "pred": args.pred,
               "images": result.num_images, "predictions": result.num_predictions,
               # NaN (class without GT) as null: the --json output stays strict JSON
               "per_class": [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
                             for r in result.per_class_rows()]}
    from cvray.data.fingerprint import coco_fingerprint
    from cvray.runs import run_context

    with run_context("eval", cfg, argv=getattr(args, "argv", None),
                     dataset=lambda: {**coco_fingerprint({"gt": args.gt}), "pred": args.pred}) as run:
        run.summary.update(summary)
        run.summary.update(iou_type=result.iou_type, images=result.num_images,
                           predictions=result.num_predictions)
        if args.save:
            from cvray.evaluate.run import write_eval_run

            wrote = write_eval_run(run, gt, preds, result, cfg.eval,
                                   images_root=args.images_root or _default_images_root(args.gt))
            run.summary["failures_rendered"] = wrote["failures_rendered"]
    details["run_id"] = run.id
    summary["details"] = details
    emit(summary, args, title=f"COCO {args.iou_type} evaluation")
    return 0
