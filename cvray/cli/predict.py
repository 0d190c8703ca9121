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

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config, progress
from cvray.predict.model_spec import run_categories

__all__ = ["register", "resolve_model", "run_categories", "run_predict"]


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
    add_common_args(p)
    p.set_defaults(func=run_predict)


def resolve_model(spec: str, model_cfg, num_classes: int | None):
    """:func:`cvray.predict.model_spec.resolve_model`, its errors as usage errors (exit 2)."""
    from cvray.predict.model_spec import ModelSpecError, resolve_model as _resolve

    try:
        return _resolve(spec, model_cfg, num_classes)
    except ModelSpecError as exc:
        raise CliError(str(exc)) from exc


def run_predict(args: argparse.Namespace) -> int:
    from cvray.data.coco import load_coco
    from cvray.predict.engine import ModelFactory
    from cvray.predict.distributed import predict_ray
    from cvray.predict.sources import list_units
    from cvray.data.fingerprint import coco_fingerprint, files_fingerprint
    from cvray.runs import run_context

    extra = []
    if args.batch_size is not None:
        extra.append(f"predict.batch_size={args.batch_size}")
    if args.actors is not None:
        extra.append(f"predict.num_actors={args.actors}")
    if args.out:
        raise CliError(f"predict --out {args.out}: predictions are written into the predict run; "
                       f"give the runs root with --root {args.out}")
    cfg = load_cli_config(args, extra)
    cats_uri = args.categories or (args.input if args.input.lower().endswith(".json") else None)
    category_ids = None
    if cats_uri:
        category_ids = sorted(int(c["id"]) for c in load_coco(cats_uri)["categories"])
    else:  # a training run knows its dataset: model label k → its k-th sorted category id
        category_ids = run_categories(args.model)
        cats_uri = f"{args.model} (training dataset)" if category_ids else None
    model_cfg, source = resolve_model(args.model, cfg.predict.model, len(category_ids) if category_ids else None)
    if model_cfg.task == "semantic":
        raise CliError("cvray predict runs detection / instance models; semantic models are evaluated "
                       "with cvray.evaluate.semantic")
    units = list_units(args.input, images_root=args.images_root, video_stride=cfg.predict.video_stride)
    def fingerprint():
        fp = (coco_fingerprint({"input": args.input}) if args.input.lower().endswith(".json")
              else files_fingerprint({"input": args.input}))
        return {**fp, "input": args.input, "categories": cats_uri}

    with run_context("predict", cfg, argv=args.argv, ray=True, address=args.address,
                     dataset=fingerprint) as run:
        run.update(model={"source": source, "config": model_cfg.model_dump(mode="json")})
        bar = progress(iter(()), total=None, desc="predict")

        def on_progress(done, total, ips):
            bar.total = total
            bar.n = done
            bar.set_postfix_str(f"{ips:.1f} img/s")
            bar.refresh()

        summary = predict_ray(units, run, cfg=cfg.predict, model_factory=ModelFactory(model_cfg),
                              category_ids=category_ids, on_progress=on_progress)
        bar.close()
        run.summary.update(summary)
    emit({"run": run.id, "run_uri": run.uri, **summary}, args, title="cvray predict")
    return 0
