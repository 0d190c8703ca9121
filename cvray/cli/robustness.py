"""``cvray robustness --model RUN|CKPT --data COCO_ROOT|MOT_DIR [--split val] [--corruptions benchmark|holdout|all|extras|NAMES]
[--severities 1-5] [--compression h264:18,23,28,35] [--resume RUN] [--json]``.

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
    p.add_argument("--data", default=None, help="COCO dataset root (annotations/instances_<split>.json) or its JSON; "
                   "or a folder of MOTChallenge sequences (<SEQ>/gt/gt.txt): tracking under corruption")
    p.add_argument("--split", default="val")
    p.add_argument("--corruptions", default=None, help="benchmark | holdout | all | extras | comma-separated names")
    p.add_argument("--severities", default=None, help="e.g. 1-5 or 1,3,5")
    p.add_argument("--compression", default=None, metavar="TIERS",
                   help="MOT data: H.264/H.265 tiers by CRF, e.g. h264:18,23,28,35 or 'h264:23;h265:28'")
    p.add_argument("--resume", default=None, metavar="RUN", help="run only the cells RUN lacks (same model/data)")
    p.set_defaults(func=cmd_robustness)


def _resume(args: argparse.Namespace, cfg, extra: list[str]):
    """The suite RUN started (its model, data, split, corruptions, severities, seed, predict
    section: ``robustness_inputs.json``) with this session's storage / Ray settings."""
    import tempfile

    import yaml

    from cvray.config import load_config
    from cvray.io import storage
    from cvray.robustness.workflow import INPUTS_FILE
    from cvray.runs.run import check_run_id

    check_run_id(args.resume)
    if args.model or args.data or args.config or extra or any(
            not o.startswith(("storage.", "ray.")) for o in args.overrides):
        raise CliError(f"--resume {args.resume} continues the suite it started: drop --model, --data, --config, "
                       "--corruptions, --severities and overrides other than storage.* / ray.*")
    uri = storage.join(cfg.storage.root, args.resume, INPUTS_FILE)
    if not storage.exists(uri):
        raise CliError(f"--resume {args.resume}: no robustness run there ({uri} is missing)")
    spec = storage.read_json(uri)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"seed": spec["seed"], "robustness": spec["robustness"], "predict": spec["predict"],
                        **({"track": spec["track"]} if spec.get("track") else {})}, f)
    try:
        session = [f"storage.root={cfg.storage.root}", *args.overrides,
                   *([f"ray.address={args.address}"] if args.address else [])]
        cfg = load_config(f.name, session)
    finally:
        import os

        os.unlink(f.name)
    return cfg, spec["model"], spec["data"], spec.get("split", "val")


def cmd_robustness(args: argparse.Namespace) -> int:
    from cvray.cli.progress import Progress
    from cvray.data.fingerprint import coco_fingerprint
    from cvray.io import storage
    from cvray.robustness.workflow import prepare_robustness, run_robustness
    from cvray.runs import run_context

    extra = []
    if args.corruptions:
        extra.append(f"robustness.corruptions={args.corruptions}")
    if args.severities:
        extra.append(f"robustness.severities={args.severities}")
    if args.compression:
        extra.append(f"robustness.compression={args.compression}")
    cfg = load_cli_config(args, extra)
    model, data, split = args.model, args.data, args.split
    if args.resume:
        cfg, model, data, split = _resume(args, cfg, extra)
    if not model or not data:
        raise CliError("cvray robustness needs --model RUN|CKPT and --data COCO_ROOT|MOT_DIR")
    inputs = prepare_robustness(cfg.robustness, cfg.predict, model=model, data=data, split=split, seed=cfg.seed)

    def fingerprint():
        if inputs.mode == "tracking":  # every gt.txt of the sequences (the frames are listed by them)
            from cvray.data.fingerprint import files_fingerprint

            return files_fingerprint({s: storage.join(inputs.gt_uri, s, "gt", "gt.txt") for s in inputs.sequences})
        return coco_fingerprint({split: inputs.gt_uri})

    with run_context("robustness", cfg, argv=args.argv, ray=True, address=args.address, run_id=args.resume,
                     dataset=fingerprint) as run:
        with Progress("cvray robustness", "cell", len(inputs.cells())) as progress:
            summary = run_robustness(run, cfg.robustness, inputs, ray=True, on_progress=progress, track=cfg.track)
    emit({"run": run.id, "run_uri": run.uri, **summary}, args, title="cvray robustness")
    return 1 if summary["cells_failed"] else 0
