"""``cvray latency --model RUN|CKPT --input IMAGES|COCO_JSON|VIDEO [--budget MS] [--no-ray] [--json]``.

A latency budget sheet: every stage of the inference pipeline (decode, preprocess, inference,
NMS, mask paste, post-processing, tracking association, serialization) as p50 / p95 / p99 and
FPS, per configuration (``latency.input_sizes`` x ``batch_sizes`` x ``threads`` on the worker's
device) and per scene (typical images, the most crowded, the largest), warm-up timed apart; the
``latency`` table, ``artifacts/latency/sheet.png`` and which stage breaks ``--budget``.
"""
from __future__ import annotations

import argparse

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config

_TABLE_COLS = ("setting", "scene", "stage", "p50_ms", "p95_ms", "p99_ms", "fps")


def register(sub) -> None:
    p = sub.add_parser("latency", help="per-stage latency budget sheet (p50/p95/p99, FPS, what breaks the budget)")
    add_common_args(p)
    p.add_argument("--model", default=None, help="a train run (folder/URI), a checkpoint, or ARCH[:BACKBONE]")
    p.add_argument("--input", default=None, help="images folder, COCO JSON (worst-case scenes from its boxes), video")
    p.add_argument("--categories", default=None, help="COCO JSON whose categories the model predicts")
    p.add_argument("--budget", type=float, default=None, metavar="MS", help="per-image budget (latency.budget_ms)")
    p.add_argument("--no-ray", action="store_true", help="time in this process instead of a Ray worker")
    p.set_defaults(func=cmd_latency)


def cmd_latency(args: argparse.Namespace) -> int:
    from cvray.cli.progress import Progress
    from cvray.latency.workflow import prepare_latency, run_latency
    from cvray.runs import run_context

    extra = [f"latency.budget_ms={args.budget}"] if args.budget is not None else []
    cfg = load_cli_config(args, extra)
    if not args.model or not args.input:
        raise CliError("cvray latency needs --model RUN|CKPT and --input IMAGES|COCO_JSON|VIDEO")
    inputs = prepare_latency(cfg.latency, cfg.predict, model=args.model, input=args.input,
                             categories=args.categories)
    ray = not args.no_ray
    with run_context("latency", cfg, argv=args.argv, ray=ray, address=args.address) as run:
        with Progress("cvray latency", "measurement", None) as progress:
            summary = run_latency(run, cfg.latency, inputs, ray=ray, track=cfg.track,
                                  postprocess=cfg.predict.postprocess, on_progress=progress)
    if not getattr(args, "json", False):
        _print_sheet(run)
    emit({"run": run.id, "run_uri": run.uri, **summary}, args, title="cvray latency")
    return 0


def _print_sheet(run) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = [r for r in run.read_table("latency").to_pylist() if r["phase"] == "timed"]
    t = Table(title="latency sheet (ms per image)", header_style="bold")
    for c in _TABLE_COLS:
        t.add_column(c, justify="right" if c.endswith(("_ms", "fps")) else "left")
    for r in rows:
        t.add_row(*[(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c])) for c in _TABLE_COLS])
    Console(stderr=True, highlight=False).print(t)
