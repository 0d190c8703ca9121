"""``cvray report RUN``: one self-contained HTML page for a run (written into the run's artifacts),
one section per stage that ran; ``cvray report RUN_A RUN_B``: a page comparing two runs (metrics
side by side, training curves overlaid, config diff), written into RUN_A's artifacts."""
from __future__ import annotations

import argparse

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config

__all__ = ["register", "run_report"]


def register(sub) -> None:
    p = sub.add_parser("report", help="build a self-contained HTML report of a run, or compare two runs",
                       description="cvray report RUN: the run's page (artifacts/report.html). "
                                   "cvray report RUN_A RUN_B: a comparison page (RUN_A's "
                                   "artifacts/compare-<RUN_B id>.html).")
    p.add_argument("run", help="run id (or unique prefix) under the runs root, or a run folder URI; "
                               "give a second run to compare the two")
    p.add_argument("--out", default=None, help="also write the page to this local path / URI")
    add_common_args(p)
    p.set_defaults(func=run_report)


def _runs(args: argparse.Namespace) -> list[str]:
    """The one or two positionals; every ``key=value`` word is an override (either side)."""
    words = [args.run, *getattr(args, "overrides", [])]
    values = [w for w in words if "=" not in w]
    if len(values) not in (1, 2):
        raise CliError(f"expected RUN or RUN_A RUN_B, got {len(values)}: {' '.join(values) or 'none'}")
    args.overrides = [w for w in words if "=" in w]
    return values


def _resolve(root: str, run: str) -> str:
    from cvray.cli.runs import resolve_run_id
    from cvray.io import storage

    if storage.exists(storage.join(run, "manifest.json")):
        return run
    return storage.join(root, resolve_run_id(root, run))


def run_report(args: argparse.Namespace) -> int:
    from cvray.io import storage
    from cvray.report.html import ReportError, write_compare, write_report

    runs = _runs(args)
    root = load_cli_config(args).storage.root  # validates the overrides even for a run URI
    uris = [_resolve(root, r) for r in runs]
    try:
        target, data = write_report(uris[0]) if len(uris) == 1 else write_compare(uris[0], uris[1])
    except ReportError as exc:
        raise CliError(str(exc)) from exc
    if args.out:
        storage.write_bytes(args.out, data)
    out = {"run": uris[0], "report": target, "out": args.out, "bytes": len(data)}
    if len(uris) == 2:
        out = {"runs": uris, "compare": target, "out": args.out, "bytes": len(data)}
    emit(out, args, title="cvray report")
    return 0
