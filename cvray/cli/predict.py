"""``cvray predict --model MODEL --input URI --out URI``: batch inference on Ray Data.

``--model`` is one of:

* a training run folder/URI (``manifest.json`` + ``checkpoints/best.pt`` or ``latest.pt``): its
  ``train.model`` config (the network it trained) and checkpoint are used;
* a checkpoint file (``.pt``/``.pth``): loaded into the network ``predict.model.*`` describes;
* an architecture name (``fasterrcnn``, ``maskrcnn``, ``retinanet``, ``fcos``), optionally
  ``ARCH:BACKBONE``: untrained unless ``predict.model.weights=URI`` is given.

``--input`` is an image folder, a COCO annotation JSON (images under ``<root>/images`` or
``--images-root``), a video file or a folder of videos; local or ``s3://``. The predictions are
tables of the predict run (``predictions`` and ``issues``) under the runs root ``--root``.
(``--out`` means "output folder for files outside the run" in every command; predict writes none,
so ``--out`` is an error here that points to ``--root``.)
"""
from __future__ import annotations

import argparse

from cvray.cli.common import CliError, add_common_args, add_drift_args, drift_overrides, emit, load_cli_config

__all__ = ["register", "run_predict"]


def register(sub) -> None:
    p = sub.add_parser("predict", help="batch inference on Ray Data → predictions Parquet")
    p.add_argument("--model", required=True, help="train run, checkpoint file, or ARCH[:BACKBONE]")
    p.add_argument("--input", required=True, help="image folder, COCO JSON, video or video folder")
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)  # an error: see run_predict
    p.add_argument("--images-root", default=None, help="images root of a COCO input")
    p.add_argument("--categories", default=None,
                   help="COCO JSON whose sorted category ids map model labels 1..K (default: the input's)")
    p.add_argument("--batch-size", type=int, default=None, help="images per model call (predict.batch_size)")
    p.add_argument("--actors", type=int, default=None, help="model replicas (predict.num_actors)")
    add_drift_args(p, "predict")
    add_common_args(p)
    p.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from cvray.cli.progress import Progress
    from cvray.predict.workflow import predict_fingerprint, prepare_predict, run_predict as _run
    from cvray.runs import run_context

    extra = []
    if args.batch_size is not None:
        extra.append(f"predict.batch_size={args.batch_size}")
    if args.actors is not None:
        extra.append(f"predict.num_actors={args.actors}")
    extra += drift_overrides(args, "predict")
    if args.out:
        raise CliError(f"predict --out {args.out}: predictions are written into the predict run; "
                       f"give the runs root with --root {args.out}")
    cfg = load_cli_config(args, extra)
    inputs = prepare_predict(cfg.predict, input=args.input, model=args.model, images_root=args.images_root,
                             categories=args.categories)  # InputError: one line, exit 2, no run
    with run_context("predict", cfg, argv=args.argv, ray=True, address=args.address,
                     dataset=lambda: predict_fingerprint(inputs)) as run:
        with Progress("cvray predict", "img") as bar:
            summary = _run(run, cfg.predict, inputs, on_progress=bar)
    emit({"run": run.id, "run_uri": run.uri, **summary}, args, title="cvray predict")
    return 1 if summary.get("issue_rows") else 0  # an unreadable image or frame is a failed unit
