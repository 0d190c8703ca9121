"""``cvray report RUN``: one self-contained HTML page for a run (written into the run's artifacts)."""
from __future__ import annotations

import argparse

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config, one_positional

__all__ = ["register", "run_report"]


def register(sub) -> None:
    p = sub.add_parser("report", help="build a self-contained HTML report of a run")
    p.add_argument("run", help="run id (or unique prefix) under the runs root, or a run folder URI")
    p.add_argument("--out", default=None, help="also write the page to this local path / URI")
    add_common_args(p)
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from cvray.cli.runs import resolve_run_id
    from cvray.io import storage
    from cvray.report.html import ReportError, write_report

    one_positional(args, "run")
    root = load_cli_config(args).storage.root  # validates the overrides even for a run URI
    if storage.exists(storage.join(args.run, "manifest.json")):
        run_uri = args.run
    else:
        run_uri = storage.join(root, resolve_run_id(root, args.run))
    try:
        target, data = write_report(run_uri)
    except ReportError as exc:
        raise CliError(str(exc)) from exc
    if args.out:
        storage.write_bytes(args.out, data)
    emit({"run": run_uri, "report": target, "out": args.out, "bytes": len(data)}, args, title="cvray report")
    return 0
