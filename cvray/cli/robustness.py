"""``cvray robustness --model RUN|CKPT --data COCO_ROOT [--split val] [--corruptions benchmark|holdout|all|extras|NAMES]
[--severities 1-5] [--resume RUN] [--json]``.

A COCO-C style suite: the clean split and every corruption x severity cell (corrupt -> predict ->
evaluate) as tasks on a pool of model actors; one row per cell in the run's ``robustness`` table;
P / mPC / rPC for boxes and masks in the summary. ``--resume RUN`` runs only the cells RUN lacks.
"""
from __future__ import annotations

import argparse

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config


def register(sub) -> None:
    p = sub.add_parser("robustness", help="COCO-C corruptions x severities as a resumable Ray grid (P / mPC / rPC)")
    add_common_args(p)
    p.add_argument("--model", default=None, help="a train run (folder/URI), a checkpoint, or ARCH[:BACKBONE]")
    p.add_argument("--data", default=None, help="COCO dataset root (annotations/instances_<split>.json) or its JSON")
    p.add_argument("--split", default="val")
    p.add_argument("--corruptions", default=None, help="benchmark | holdout | all | extras | comma-separated names")
    p.add_argument("--severities", default=None, help="e.g. 1-5 or 1,3,5")
    p.add_argument("--resume", default=None, metavar="RUN", help="run only the cells RUN lacks (same model/data)")
    p.set_defaults(func=cmd_robustness)


def cmd_robustness(args: argparse.Namespace) -> int:
    from cvray.cli.progress import Progress
    from cvray.data.fingerprint import coco_fingerprint
    from cvray.io import storage
    from cvray.robustness.workflow import INPUTS_FILE, prepare_robustness, run_robustness
    from cvray.runs import run_context

    extra = []
    if args.corruptions:
        extra.append(f"robustness.corruptions={args.corruptions}")
    if args.severities:
        extra.append(f"robustness.severities={args.severities}")
    cfg = load_cli_config(args, extra)
    model, data, split = args.model, args.data, args.split
    if args.resume:
        from cvray.runs.run import check_run_id

        check_run_id(args.resume)
        uri = storage.join(cfg.storage.root, args.resume, INPUTS_FILE)
        if not storage.exists(uri):
            raise CliError(f"--resume {args.resume}: no robustness run there ({uri} is missing)")
        spec = storage.read_json(uri)
        for name, given in (("--model", model), ("--data", data)):
            if given and given != spec[name[2:]]:
                raise CliError(f"--resume {args.resume}: it was started with {name} {spec[name[2:]]}, not {given}")
        model, data, split = spec["model"], spec["data"], spec.get("split", split)
    if not model or not data:
        raise CliError("cvray robustness needs --model RUN|CKPT and --data COCO_ROOT")
    inputs = prepare_robustness(cfg.robustness, cfg.predict, model=model, data=data, split=split, seed=cfg.seed)

    def fingerprint():
        return coco_fingerprint({split: inputs.gt_uri})

    with run_context("robustness", cfg, argv=args.argv, ray=True, address=args.address, run_id=args.resume,
                     dataset=fingerprint) as run:
        with Progress("cvray robustness", "cell", len(inputs.cells())) as progress:
            summary = run_robustness(run, cfg.robustness, inputs, ray=True, on_progress=progress)
    emit({"run": run.id, "run_uri": run.uri, **summary}, args, title="cvray robustness")
    return 1 if summary["cells_failed"] else 0
