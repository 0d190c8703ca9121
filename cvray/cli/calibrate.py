"""``cvray calibrate --model RUN|CKPT --data COCO_ROOT [--fit-split val] [--eval-split test]
[--method temperature|platt|isotonic|all] [--corruptions NAMES|benchmark|... --severities 1,3]
[--robustness RUN] [--policy act_precision=P,observe_recall=R] [--no-ray] [--json]``.

Calibration of detection scores: detections matched to the ground truth at ``calibrate.iou_thr``
(COCO rule); ECE / D-ECE / LaECE on the eval split, clean and under each corruption slice, before
and after temperature / Platt / isotonic calibrators fitted on the fit split only; reliability
diagrams; the chosen calibrator saved as ``<run>/calibrator.json`` (``predict.calibrator=<run>``
applies it). ``--robustness RUN`` takes the corruption slices, severities and seed of that
robustness run, so the slices are exactly the suite's. ``--policy`` chooses per-class act / observe
thresholds on the fit split for the stated targets, writes ``<run>/policy.json``
(``predict.policy=<run>`` tags every detection) and the ``policy_slices`` table of every slice.
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
    p.add_argument("--policy", default=None, metavar="TARGETS",
                   help="choose an act / observe / abstain policy on the fit split, e.g. "
                        "act_precision=0.9,observe_recall=0.8[,min_support=10,scores=raw|calibrated] "
                        "(calibrate.policy.*); written as <run>/policy.json (predict.policy=<run>)")
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


def _print_policy(pol: dict) -> None:
    """One line per slice: the decision rates and precision / recall against the targets."""
    from rich.console import Console
    from rich.table import Table

    t = pol["targets"]
    tab = Table(title=f"decision policy ({pol['scores']} scores; act precision >= {t['act_precision']:g}, "
                      f"observe recall >= {t['observe_recall']:g}): {pol['uri']}", header_style="bold")
    cols = ("act_rate", "observe_rate", "abstain_rate", "act_precision", "seen_recall")
    for c in ("slice", "dets", "act", "observe", "abstain", "prec(act)", "rec(act+obs)"):
        tab.add_column(c, no_wrap=c != "slice")
    for label, r in pol["slices"].items():
        tab.add_row(label, str(r["detections"]), *("n/a" if r[c] is None else f"{r[c]:.3f}" for c in cols))
    Console(highlight=False, width=max(100, Console().width)).print(tab)


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
    if args.policy:
        from cvray.calibrate.decision import parse_targets

        try:
            extra += [f"calibrate.policy.{k}={v}" for k, v in parse_targets(args.policy).items()]
        except ValueError as exc:
            raise CliError(str(exc)) from None
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
    shown = {k: v for k, v in out.items() if args.json or k not in ("eval", "diagrams", "calibrators")}
    if not args.json and "policy" in shown:  # its table follows; the summary names the file
        shown["policy"] = shown["policy"]["uri"]
    emit(shown, args, title="cvray calibrate")
    if not args.json:
        _print_table(summary)
        if summary.get("policy"):
            _print_policy(summary["policy"])
    return 1 if summary["slices_failed"] or summary.get("failed_images") else 0
