"""``cvray calibrate --model RUN|CKPT --data COCO_ROOT [--fit-split val] [--eval-split test]
[--method temperature|platt|isotonic|all] [--corruptions NAMES|benchmark|... --severities 1,3]
[--robustness RUN] [--no-ray] [--json]``.

Calibration of detection scores: detections matched to the ground truth at ``calibrate.iou_thr``
(COCO rule); ECE / D-ECE / LaECE on the eval split, clean and under each corruption slice, before
and after temperature / Platt / isotonic calibrators fitted on the fit split only; reliability
diagrams; the chosen calibrator saved as ``<run>/calibrator.json`` (``predict.calibrator=<run>``
applies it). ``--robustness RUN`` takes the corruption slices, severities and seed of that
robustness run, so the slices are exactly the suite's.
"""
from __future__ import annotations

import argparse

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="detection score calibration: ECE / D-ECE / LaECE, calibrators fitted "
                                         "on val, applied to test and its corruption slices")
    add_common_args(p)
    p.add_argument("--model", default=None, help="a train run (folder/URI), a checkpoint, or ARCH[:BACKBONE]")
    p.add_argument("--data", default=None, help="COCO dataset root (annotations/instances_<split>.json)")
    p.add_argument("--fit-split", default=None, help="split the calibrators are fitted on (calibrate.fit_split, val)")
    p.add_argument("--eval-split", default=None,
                   help="split they are evaluated on (calibrate.eval_split, test; none: the fit split is halved)")
    p.add_argument("--method", default=None, help="temperature | platt | isotonic | all, or a comma list")
    p.add_argument("--corruptions", default=None, help="benchmark | holdout | all | extras | comma-separated names")
    p.add_argument("--severities", default=None, help="e.g. 1-5 or 1,3")
    p.add_argument("--robustness", default=None, metavar="RUN",
                   help="take the corruptions, severities and seed of this robustness run")
    p.add_argument("--no-ray", action="store_true", help="run the slices in this process (no Ray)")
    p.set_defaults(func=cmd_calibrate)


def _robustness_inputs(spec: str, root: str) -> dict:
    from cvray.io import storage
    from cvray.robustness.workflow import INPUTS_FILE
    from cvray.runs.run import check_run_id

    uri = storage.join(spec, INPUTS_FILE)
    if not storage.exists(uri):
        if "/" in spec:
            raise CliError(f"--robustness {spec}: not a robustness run ({uri} is missing)")
        check_run_id(spec)
        uri = storage.join(root, spec, INPUTS_FILE)
        if not storage.exists(uri):
            raise CliError(f"--robustness {spec}: no robustness run there ({uri} is missing)")
    return storage.read_json(uri)


def _print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    methods = ["uncalibrated", *summary["methods"]]
    t = Table(title=f"calibration on {summary['eval_split']} (fitted on {summary['fit_split']}; "
                    f"IoU {summary['iou_thr']:g}, score >= {summary['score_thr']:g})", header_style="bold")
    for c in ("slice", "metric", *methods):
        t.add_column(c, no_wrap=True)
    for label, per in summary["eval"].items():
        for metric in ("ece", "dece", "laece"):
            vals = [per.get(m, {}).get(metric) for m in methods]
            t.add_row(label, metric, *("n/a" if v is None else f"{v:.4f}" for v in vals))
    Console(highlight=False, width=max(100, Console().width)).print(t)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from cvray.calibrate.workflow import prepare_calibrate, run_calibrate
    from cvray.cli.progress import Progress
    from cvray.data.fingerprint import coco_fingerprint
    from cvray.runs import run_context

    extra = []
    for flag, key in (("fit_split", "fit_split"), ("eval_split", "eval_split"), ("method", "methods"),
                      ("corruptions", "corruptions"), ("severities", "severities")):
        if getattr(args, flag):
            extra.append(f"calibrate.{key}={getattr(args, flag)}")
    cfg = load_cli_config(args, extra)
    model, data, suite = args.model, args.data, None
    if args.robustness:
        if args.corruptions or args.severities or any(o.startswith(("calibrate.corruptions", "calibrate.severities",
                                                                       "calibrate.seed")) for o in args.overrides):
            raise CliError(f"--robustness {args.robustness} takes the suite's corruptions, severities and seed: "
                           "drop --corruptions / --severities / calibrate.seed")
        suite = _robustness_inputs(args.robustness, cfg.storage.root)
        model, data = model or suite.get("model"), data or suite.get("data")
    if not model or not data:
        raise CliError("cvray calibrate needs --model RUN|CKPT and --data COCO_ROOT")
    inputs = prepare_calibrate(cfg.calibrate, cfg.predict, model=model, data=data, seed=cfg.seed,
                               robustness=suite)  # InputError: one line, exit 2, no run

    def fingerprint():
        return coco_fingerprint({"fit": inputs.fit.gt_uri, "eval": inputs.eval.gt_uri}
                                if inputs.fit.gt_uri != inputs.eval.gt_uri else {"fit": inputs.fit.gt_uri})

    with run_context("calibrate", cfg, argv=args.argv, ray=not args.no_ray, address=args.address,
                     dataset=fingerprint) as run:
        with Progress("cvray calibrate", "slice", len(inputs.slices())) as progress:
            summary = run_calibrate(run, cfg.calibrate, inputs, ray=not args.no_ray, on_progress=progress)
        if args.robustness:
            run.summary["robustness_run"] = args.robustness
    out = {"run": run.id, "run_uri": run.uri, **summary, **({"robustness_run": args.robustness} if suite else {})}
    emit({k: v for k, v in out.items() if args.json or k not in ("eval", "diagrams", "calibrators")}, args,
         title="cvray calibrate")
    if not args.json:
        _print_table(summary)
    return 1 if summary["slices_failed"] or summary.get("failed_images") else 0
