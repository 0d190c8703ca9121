"""``cvray validate ANNOTATIONS.json [MORE.json ...] --images DIR_OR_URI [--json]``.

Runs every validation rule, leakage detection and the sanity baselines (Ray Data; ``--local``
for one process), writes a run with the ``issues`` / ``leakage_pairs`` / ``images`` tables and
exits 1 when the error rows exceed ``validation.max_errors`` (``--max-errors``), 0 when clean and 2
on usage errors.
"""
from __future__ import annotations

import argparse

from cvray.cli.common import CliError, add_common_args, console, emit, load_cli_config

__all__ = ["register", "run_validate"]

_SHOW = 15  # issue rows printed in the terminal summary (all rows are in the issues table)


def register(sub) -> None:
    p = sub.add_parser("validate", help="dataset QA: rules, leakage, baselines (exit 1 on errors)")
    p.add_argument("annotations", nargs="+", metavar="ANNOTATIONS.json",
                   help="COCO annotation files (local or s3://); instances_<split>.json names the split")
    p.add_argument("--images", required=True, help="images root (file_name is relative to it)")
    p.add_argument("--max-errors", type=int, default=None,
                   help="tolerated error rows before exit 1 (default validation.max_errors = 0)")
    p.add_argument("--phash-threshold", type=int, default=None,
                   help="Hamming distance for near duplicates (default validation.phash_threshold)")
    p.add_argument("--local", action="store_true", help="run in this process instead of Ray Data")
    p.add_argument("--no-baselines", action="store_true", help="skip the sanity baselines")
    add_common_args(p)
    p.set_defaults(func=run_validate)


def _split_positionals(items: list[str]) -> tuple[list[str], list[str]]:
    """argparse gives every positional to ``annotations``: ``key=value`` ones are overrides."""
    files = [i for i in items if "=" not in i]
    return files, [i for i in items if "=" in i]


def run_validate(args: argparse.Namespace) -> int:
    from cvray.data.fingerprint import coco_fingerprint
    from cvray.io import storage
    from cvray.runs import run_context
    from cvray.validate.workflow import ValidateInputs, run_validate

    files, overrides = _split_positionals(args.annotations)
    args.overrides = list(args.overrides) + overrides
    extra = []
    if args.max_errors is not None:
        extra.append(f"validation.max_errors={args.max_errors}")
    if args.phash_threshold is not None:
        extra.append(f"validation.phash_threshold={args.phash_threshold}")
    cfg = load_cli_config(args, extra)
    if not files:
        raise CliError("give at least one annotation file")
    for f in files:
        if not storage.exists(f):
            raise CliError(f"{f}: no such annotation file")
    if not storage.exists(args.images):
        raise CliError(f"{args.images}: no such images folder")
    try:
        from cvray.validate.reference import annotation_splits

        splits = annotation_splits(files)
    except ValueError as exc:
        raise CliError(str(exc)) from exc

    with run_context("validate", cfg, argv=getattr(args, "argv", None), ray=not args.local,
                     address=args.address,
                     dataset=lambda: {**coco_fingerprint(splits), "images_root": args.images}) as run:
        from cvray.cli.progress import Progress

        with Progress("cvray validate", "img") as bar:
            result, summary = run_validate(run, cfg.validation, ValidateInputs(
                annotations=tuple(files), images=args.images, baselines=not args.no_baselines),
                ray=not args.local, on_progress=bar)
    summary = {**summary, "run": run.id, "run_uri": run.uri}
    if not args.json:
        _print_issues(result)
    emit(summary, args, title="validate")
    return 0 if summary["passed"] else 1


def _print_issues(result) -> None:
    from rich.table import Table

    order = {"error": 0, "warning": 1, "info": 2}
    rows = sorted(result.issues, key=lambda i: order[i.severity])[:_SHOW]
    if not rows:
        return
    t = Table(title=f"issues (first {len(rows)} of {len(result.issues)}; all in the issues table)")
    for c in ("severity", "rule", "image", "ann", "message"):
        t.add_column(c, overflow="fold")
    for i in rows:
        t.add_row(i.severity, i.rule, str(i.image_id or ""), str(i.annotation_id or ""), i.message)
    console(stderr=True).print(t)
