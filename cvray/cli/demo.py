"""``cvray demo``: the whole workflow on embedded defaults, on a fresh machine, in a few minutes.

synthetic data → Ray Data ingest (dataset summary) → Mask R-CNN training with 2 Ray Train
workers (COCO box and mask AP on the val split) → tracking of the synthetic sequences with one Ray
actor each (HOTA / IDF1 / MOTA against exact ground truth). Everything lands in one run; the summary table says
where.
"""
from __future__ import annotations

import argparse
import logging
import time

from cvray.cli.common import add_common_args, console, emit, load_cli_config

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo on synthetic data (embedded defaults)")
    add_common_args(p)
    p.add_argument("--images", type=int, default=None, help="synthetic images (default synth.images)")
    p.add_argument("--videos", type=int, default=None, help="synthetic sequences (default synth.videos)")
    p.add_argument("--skip-train", action="store_true", help="skip training and the trained model's detect-track stage (synth, ingest and the tracker-only reference still run)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from cvray.data.synth import synthesize
    from cvray.data.workflow import coco_layout, ingest_coco
    from cvray.io import storage
    from cvray.runs import run_context

    cfg = load_cli_config(args)
    images = args.images if args.images is not None else cfg.synth.images
    videos = args.videos if args.videos is not None else cfg.synth.videos
    con = console()
    t0 = time.time()
    summary: dict = {}
    with run_context("demo", cfg, argv=args.argv, ray=True, address=args.address) as run:
        data_uri = run.path("artifacts", "dataset")
        stages = _later_stages(args)
        total = 2 + len(stages)
        con.print(f"[bold]1/{total}[/] synthetic data → {data_uri}")
        synth = synthesize(data_uri, images, videos, cfg.seed, cfg.synth)
        summary["data"] = {"images": synth["images"], "videos": synth["videos"], "splits": synth["splits"]}

        con.print(f"[bold]2/{total}[/] ingest through Ray Data")
        coco_root = synth["coco_root"]
        summary["ingest"] = ingest_coco(run, coco_layout(coco_root), storage.join(coco_root, "images"))

        for step, (name, fn) in enumerate(stages, start=3):
            con.print(f"[bold]{step}/{total}[/] {name}")
            if name == "train":  # minutes of work: iterations, rate, ETA, loss on stderr
                from cvray.cli.progress import Progress
                from cvray.train.demo import demo_train_config

                with Progress("cvray demo: train", "it", demo_train_config(cfg).max_iter) as bar:
                    summary[name] = fn(run, cfg, synth, on_progress=bar)
            else:
                summary[name] = fn(run, cfg, synth)
        run.summary.update(summary)
    summary["report"] = _write_report(run.uri)
    summary["run"] = run.id
    summary["run_uri"] = run.uri
    summary["seconds"] = round(time.time() - t0, 1)
    summary["next"] = f"cvray runs show {run.id} --root {cfg.storage.root}"
    emit(summary, args, title="cvray demo")
    return 0


def _write_report(run_uri: str) -> str | None:
    """The run's HTML report (learning curves, the capstone's tracks, evaluation, issues)."""
    from cvray.report.html import ReportError, write_report

    try:
        return write_report(run_uri)[0]
    except ReportError as exc:
        log.warning("no report: %s", exc)
        return None


def _later_stages(args):
    """Stages added by later capabilities; each is ``fn(run, cfg, synth) -> summary dict``."""
    stages = []
    if not args.skip_train:
        try:
            from cvray.train.demo import demo_train
            stages.append(("train", demo_train))
        except ImportError as exc:
            log.info("training stage unavailable: %s", exc)
    if not args.skip_train:
        from cvray.track.demo_pipeline import demo_detect_track
        # the capstone: the model just trained detects, segments and tracks the synthetic videos
        stages.append(("detect_track", demo_detect_track))
    if not args.skip_train:
        from cvray.robustness.demo import demo_robustness
        # the trained model under a few corruptions x 2 severities (cvray robustness' cells on Ray)
        stages.append(("robustness", demo_robustness))
    try:
        from cvray.track.demo import demo_track
        # tracker-only reference: the generator's noisy detections, same tracker, same metrics
        stages.append(("track", demo_track))
    except ImportError as exc:
        log.info("tracking stage unavailable: %s", exc)
    return stages
