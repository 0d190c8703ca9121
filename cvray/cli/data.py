"""``cvray data synth | ingest`` (and the dataset-QA subcommands registered by cvray.validate)."""
from __future__ import annotations

import argparse
import importlib
import logging

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("data", help="synthetic data, ingest, dataset QA tools")
    ds = p.add_subparsers(dest="data_cmd", metavar="ACTION")

    sy = ds.add_parser("synth", help="generate a synthetic COCO + MOT dataset with exact ground truth")
    add_common_args(sy)
    sy.add_argument("--out", required=True, help="output URI (local folder or s3://bucket/prefix)")
    sy.add_argument("--images", type=int, default=None, help="COCO images (default synth.images)")
    sy.add_argument("--videos", type=int, default=None, help="MOT sequences (default synth.videos)")
    sy.add_argument("--seed", type=int, default=None, help="random seed (default: config seed)")
    sy.set_defaults(func=cmd_synth)

    ing = ds.add_parser("ingest", help="read a COCO dataset through Ray Data; write a summary table")
    add_common_args(ing)
    ing.add_argument("--dataset", required=True,
                     help="dataset root URI with annotations/instances_<split>.json and images/")
    ing.set_defaults(func=cmd_ingest)

    # Dataset-QA subcommands (card, split, convert) live with cvray.validate.
    try:
        qa = importlib.import_module("cvray.cli.data_qa")
        qa.register_data_subcommands(ds)
    except ImportError as exc:
        log.debug("dataset QA subcommands unavailable: %s", exc)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def cmd_synth(args: argparse.Namespace) -> int:
    from cvray.data.workflow import SynthInputs, run_synth
    from cvray.runs import run_context

    cfg = load_cli_config(args)
    inputs = SynthInputs(out=args.out, images=args.images if args.images is not None else cfg.synth.images,
                         videos=args.videos if args.videos is not None else cfg.synth.videos,
                         seed=args.seed if args.seed is not None else cfg.seed)
    if inputs.images < 1 or inputs.videos < 0:
        raise CliError("--images must be >= 1 and --videos >= 0")
    with run_context("data synth", cfg, argv=args.argv, seed=inputs.seed) as run:
        result = run_synth(run, cfg.synth, inputs)
    emit({**result, "run": run.id}, args, title="synthetic data")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from cvray.data.workflow import IngestInputs, coco_layout, run_ingest
    from cvray.runs import run_context

    cfg = load_cli_config(args)
    try:
        coco_layout(args.dataset)  # a usage error (exit 2) before a run exists
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from exc
    with run_context("data ingest", cfg, argv=args.argv, ray=True, address=args.address) as run:
        result = run_ingest(run, cfg.data, IngestInputs(dataset=args.dataset))
    emit({**result, "run": run.id, "run_uri": run.uri}, args, title="ingest")
    return 1 if result.get("images_failed") else 0  # an unreadable image is a failed unit
