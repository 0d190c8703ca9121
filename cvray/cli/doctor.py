"""``cvray doctor``: the environment checklist users run first (exit 1 if a required check fails)."""
from __future__ import annotations

import argparse

from cvray.cli.common import add_common_args, emit, load_cli_config


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check imports, Ray, GPU, OpenCV codecs, storage, Detectron2")
    add_common_args(p)
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from cvray.doctor import run_checks

    cfg = load_cli_config(args)
    checks = run_checks(cfg.storage.root, cfg.ray, address=args.address)
    failed = [c for c in checks if c.failed]
    if args.json:
        emit({"ok": not failed, "checks": [c.__dict__ for c in checks]}, args)
    else:
        from rich.console import Console
        from rich.table import Table

        colour = {"ok": "green", "fail": "red", "warn": "yellow", "skip": "dim"}
        t = Table(title="cvray doctor")
        for col in ("check", "status", "detail"):
            t.add_column(col, overflow="fold")
        for c in checks:
            t.add_row(c.name, f"[{colour[c.status]}]{c.status}[/]", c.detail)
        con = Console(width=140)
        con.print(t)
        con.print("[red]required checks failed: " + ", ".join(c.name for c in failed) + "[/]" if failed
                  else "[green]all required checks passed[/]")
    return 1 if failed else 0
