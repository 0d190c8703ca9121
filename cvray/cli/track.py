"""``cvray track``: multi-object tracking from detections, and ``cvray track eval``.

Tracking::

    cvray track --det DET.txt|PRED.parquet [--seqinfo seqinfo.ini] --out DIR [track.max_age=60 ...]
    cvray track --det MOT_FOLDER --out DIR          # every <seq>/det/det.txt, one Ray actor each

writes ``DIR/<seq>.txt`` (MOTChallenge) and ``DIR/tracks/<seq>.parquet`` per sequence, and a run
under the runs root. When a sequence folder has ``gt/gt.txt`` the metrics are printed too.

End to end on a video (detect -> segment -> track -> annotated mp4 + JSON/Parquet)::

    cvray track --video V.mp4 --model RUN|CKPT.pt|ARCH:BACKBONE --out DIR

Evaluation::

    cvray track eval --gt GT_DIR_OR_FILE --pred PRED_DIR_OR_FILE [--json]

accepts ``<seq>/gt/gt.txt`` folders or flat ``<seq>.txt`` files and prints per-sequence and
combined HOTA, DetA, AssA, IDF1 and CLEAR (MOTA, MOTP, IDSW, Frag, MT/PT/ML, FP, FN) as TrackEval
computes it, with the old devkit (py-motmetrics) CLEAR values beside them (``--json``: one object
keyed by sequence name plus ``combined``; the devkit values under each row's ``devkit`` key).
"""
from __future__ import annotations

import argparse
import logging

from cvray.cli.common import (CliError, add_common_args, add_drift_args, console, drift_overrides, emit,
                              load_cli_config)

__all__ = ["register", "run_track", "run_track_eval"]

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser(
        "track", help="track objects from detections (MOT txt / predictions Parquet); `track eval` scores",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ts = p.add_subparsers(dest="track_cmd", metavar="ACTION")
    r = ts.add_parser("run", help="track (the default: `cvray track --det ...` is `cvray track run --det ...`)")
    g = r.add_argument_group("tracking")
    g.add_argument("--det", help="det.txt, predictions Parquet, or a folder of MOTChallenge sequences")
    g.add_argument("--seqinfo", help="seqinfo.ini of a single det.txt (default: found beside it)")
    g.add_argument("--out", help="output folder (local or s3://) for <seq>.txt and tracks Parquet")
    g.add_argument("--frame-rate", type=float, default=None, help="frame rate when no seqinfo.ini")
    g.add_argument("--render", action="store_true", help="write a review mp4 per sequence (needs frames)")
    g.add_argument("--ray", action="store_true", help="use Ray actors even for a single sequence")
    g.add_argument("--offline", nargs="?", type=int, const=20, default=None, metavar="MAX_GAP",
                   help="also write offline/<seq>.txt with track gaps up to MAX_GAP frames (default 20) "
                        "interpolated; uses future frames, so it is scored apart (metrics_offline)")
    g.add_argument("--video", help="(end-to-end) video file to detect, segment and track")
    g.add_argument("--model", help="(end-to-end) train run, checkpoint or ARCH[:BACKBONE] for --video "
                   "(as in `cvray predict`)")
    g.add_argument("--categories", help="(end-to-end) COCO JSON whose sorted category ids map model labels")
    add_drift_args(r, "track")
    add_common_args(r)
    r.set_defaults(func=run_track)

    e = ts.add_parser("eval", help="MOTA/IDF1/HOTA of tracker output against MOT ground truth")
    e.add_argument("--gt", required=True,
                   help="ground truth: <seq>/gt/gt.txt folder, flat <seq>.txt folder, or a file")
    e.add_argument("--pred", required=True,
                   help="tracker output: flat <seq>.txt folder (or TrackEval data/), or a file")
    e.add_argument("--diagnostics", action="store_true",
                   help="attribute ID switches / fragmentations to causes; recall by occlusion level")
    e.add_argument("--mot17-classes", action="store_true",
                   help="MOT16/17 gt: drop predictions on distractor classes, evaluate pedestrians only")
    add_common_args(e)
    e.set_defaults(func=run_track_eval)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


# -- evaluation ----------------------------------------------------------------------------------


def run_track_eval(args: argparse.Namespace) -> int:
    from cvray.data.fingerprint import files_fingerprint
    from cvray.runs import run_context
    from cvray.track.evaluation import TrackEvalError, TrackEvalInputs, pair_sequences
    from cvray.track.evaluation import run_track_eval as _run

    cfg = load_cli_config(args)
    inputs = TrackEvalInputs(gt=args.gt, pred=args.pred, mot17_classes=args.mot17_classes,
                             diagnostics=args.diagnostics)
    try:
        gts, preds = pair_sequences(args.gt, args.pred)  # usage errors (exit 2) before a run exists
    except (FileNotFoundError, TrackEvalError) as exc:
        raise CliError(str(exc)) from exc
    files = {**{f"{s}/gt": u for s, u in gts.items()}, **{f"{s}/pred": u for s, u in preds.items()}}
    with run_context("track eval", cfg, argv=getattr(args, "argv", None),
                     dataset=lambda: files_fingerprint(files)) as run:
        out = _run(run, cfg.track, inputs)
    # --json: exactly the metrics (keyed by sequence + combined); the run id goes to stderr
    log.info("track eval run %s", run.uri)
    if args.json:
        emit(out, args)
    else:
        _print_table(out)
        console().print(f"run {run.id} under {cfg.storage.root}")
    return 0


def _print_table(out: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    keys = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "MOTP", "IDSW", "Frag", "MT", "PT", "ML", "FP", "FN")
    devkit = ("MOTA", "MOTP", "IDSW", "Frag", "MT", "PT", "ML", "FP", "FN")
    table = Table(title="MOT evaluation (HOTA/MOTA/MOTP/IDF1 in %)", caption=(
        "TrackEval MOTA..FN: CLEAR as TrackEval 1.3 computes it (MOTChallenge today); devkit MOTA..FN: the "
        "same metrics in the old MOTChallenge devkit convention (py-motmetrics); see docs/tracking.md"))
    table.add_column("\nsequence")
    for k in keys:  # a column group: its label above its first column
        table.add_column(("TrackEval" if k == "MOTA" else "") + f"\n{k}", justify="right")
    for k in devkit:
        table.add_column(("devkit" if k == "MOTA" else "") + f"\n{k}", justify="right", style="dim")

    def cell(v) -> str:
        return "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)
    for seq, vals in out.items():
        if not isinstance(vals, dict):
            continue
        dk = vals.get("devkit", {})
        table.add_row(seq, *[cell(vals[k]) for k in keys], *[cell(dk.get(k)) for k in devkit],
                      style="bold" if seq == "combined" else None)
    console = Console(highlight=False, width=180)
    console.print(table)
    diag = out["combined"].get("diagnostics")
    if diag:
        for kind, counts in diag["causes"].items():
            console.print(f"{kind} by cause: " + ", ".join(f"{c} {n}" for c, n in counts.items()))
        console.print("recall by gt visibility: " + ", ".join(
            f"[{r['visibility_min']:.2f}, {r['visibility_max']:.2f}) {r['recall']:.1f}% of {r['gt_boxes']}"
            for r in diag["by_occlusion"] if r["gt_boxes"]))
    if out.get("missing_predictions"):
        console.print(f"missing tracker output (scored as empty): {', '.join(out['missing_predictions'])}")


# -- tracking ------------------------------------------------------------------------------------
def run_track(args: argparse.Namespace) -> int:
    from cvray.cli.progress import Progress
    from cvray.runs import run_context
    from cvray.track.workflow import prepare_track, run_track as _run, track_fingerprint

    if getattr(args, "offline", None) is not None:
        if args.offline < 1:
            raise CliError(f"--offline {args.offline}: the largest gap to fill must be >= 1 frame")
        args.overrides = [*args.overrides, f"track.offline_max_gap={args.offline}"]
    cfg = load_cli_config(args, drift_overrides(args, "track"))  # overrides are checked before anything else
    from cvray.track.workflow import check_drift_reference

    check_drift_reference(cfg.track.drift)
    if args.video:
        return run_track_video(args, cfg)
    if not args.det or not args.out:
        raise CliError("track needs --det and --out (or `cvray track eval --gt ... --pred ...`)")
    inputs = prepare_track(args.det, out=args.out, seqinfo=args.seqinfo, frame_rate=args.frame_rate,
                           render=args.render)  # InputError: one line, exit 2, no run
    use_ray = args.ray or len(inputs.jobs) > 1
    with run_context("track", cfg, argv=getattr(args, "argv", None), ray=use_ray, address=args.address,
                     dataset=lambda: track_fingerprint(inputs)) as run:
        with Progress("cvray track", "seq", len(inputs.jobs)) as bar:
            summary = _run(run, cfg.track, inputs, ray=use_ray, on_progress=bar)
    emit(summary, args, title="cvray track")
    return 1 if summary["failed"] else 0  # any failed sequence: exit 1, the count in the summary


def run_track_video(args: argparse.Namespace, cfg) -> int:
    """Detect (+ segment) every frame of ``--video`` with ``--model``, track, render."""
    if not args.model or not args.out:
        raise CliError("--video needs --model and --out")
    from cvray.data.fingerprint import files_fingerprint
    from cvray.runs import run_context
    from cvray.track.workflow import prepare_track_video, run_track_video as _run

    inputs = prepare_track_video(cfg.predict, video=args.video, out=args.out, model=args.model,
                                 categories=args.categories)
    with run_context("track", cfg, argv=getattr(args, "argv", None),
                     dataset=lambda: {**files_fingerprint({"video": args.video}), "video": args.video}) as run:
        from cvray.cli.progress import Progress

        with Progress("cvray track --video", "frame") as bar:
            summary = _run(run, cfg.track, inputs, on_progress=bar)
    emit({"run_id": run.id, "out": args.out, **summary}, args, title="cvray track --video")
    return 0
