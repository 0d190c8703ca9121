"""``cvray runs list`` / ``cvray runs show RUN``: read runs back from their manifests and tables."""
from __future__ import annotations

import argparse

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config, one_positional


def register(sub) -> None:
    p = sub.add_parser("runs", help="list and inspect runs")
    rs = p.add_subparsers(dest="runs_cmd", metavar="ACTION")
    ls = rs.add_parser("list", help="committed runs under the runs root, newest first")
    add_common_args(ls)
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--job", default=None, help="only the runs of this Ray job (cvray submit's job id)")
    ls.set_defaults(func=cmd_list)
    sh = rs.add_parser("show", help="one run: manifest, tables and row counts")
    add_common_args(sh)
    sh.add_argument("run", help="run id (or a unique prefix)")
    sh.set_defaults(func=cmd_show)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _root(args) -> str:
    return load_cli_config(args).storage.root


def _existing_root(root: str) -> str:
    """``root`` when it is a folder (or S3 prefix/bucket) that exists; else a usage error naming
    it, so a typo in ``--root`` never reads as "no runs"."""
    from cvray.io import storage

    try:
        found = storage.exists(root)
    except storage.StorageError as exc:
        raise CliError(f"runs root {root}: {str(exc).removeprefix(root + ': ')}") from exc
    if not found:
        raise CliError(f"runs root {root} does not exist (no run was made there; check --root / storage.root)")
    return root


def cmd_list(args: argparse.Namespace) -> int:
    from cvray.runs import list_runs

    root = _existing_root(_root(args))
    unreadable: list[dict[str, str]] = []
    runs = list_runs(root, unreadable=unreadable)
    if args.job:
        runs = [m for m in runs if (m.get("job") or {}).get("id") == args.job]
    runs = runs[: args.limit]
    rows = [{"run_id": m["run_id"], "command": m.get("command"), "status": m.get("status"),
             "started_at": m.get("started_at"), "ended_at": m.get("ended_at"),
             "job": (m.get("job") or {}).get("id")} for m in runs]
    if not args.job:  # an unreadable manifest is a row of its own (its job is unknown)
        rows += [{"run_id": u["run_id"], "command": None, "status": "unreadable", "started_at": None,
                  "ended_at": None, "job": None, "error": u["error"]} for u in unreadable]
    if unreadable:
        from cvray.cli.common import console

        for u in unreadable:
            console().print(f"warning: run {u['run_id']}: unreadable manifest ({u['error']})",
                            markup=False)
    if args.json:
        emit({"root": root, "runs": rows}, args)
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"runs under {root}")
    cols = ("run_id", "command", "status", "started_at") + (("job",) if any(r["job"] for r in rows) else ())
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*(str(r[c]) for c in cols))
    Console(width=140).print(t)
    return 0


def resolve_run_id(root: str, run: str) -> str:
    from cvray.io import storage

    names = [n for n in storage.list_dirs(root) if n.startswith(run)]
    committed = [n for n in names if storage.exists(storage.join(root, n, "manifest.json"))]
    if run in committed:
        return run
    if len(committed) == 1:
        return committed[0]
    if not committed:
        raise CliError(f"no committed run matching {run!r} under {root}")
    raise CliError(f"{run!r} is ambiguous under {root}: {', '.join(committed[:5])}")


def cmd_show(args: argparse.Namespace) -> int:
    from cvray.io import storage
    from cvray.runs import load_manifest

    one_positional(args, "run")
    root = _root(args)
    run_id = resolve_run_id(root, args.run)
    m = load_manifest(root, run_id)
    tables = {}
    for name in m.get("tables") or []:
        parts = storage.list_files(storage.join(root, run_id, "tables", name), suffix=".parquet")
        import pyarrow.parquet as pq

        rows, unreadable = 0, []
        for p in parts:
            fs, path = storage.resolve(p)
            try:
                with fs.open_input_file(path) as f:
                    rows += pq.ParquetFile(f).metadata.num_rows
            except Exception as exc:  # a corrupt part is named; the other parts are still counted
                unreadable.append(f"{p}: not a Parquet file ({str(exc).splitlines()[0][:120]})")
        tables[name] = {"parts": len(parts), "rows": rows, **({"unreadable": unreadable} if unreadable else {})}
    if args.json:
        emit({**m, "uri": storage.join(root, run_id), "table_rows": tables}, args)
        return 0
    summary = {
        "run_id": run_id, "uri": storage.join(root, run_id), "command": m.get("argv"),
        "status": m.get("status"), "error": m.get("error"), "seed": m.get("seed"),
        "started_at": m.get("started_at"), "ended_at": m.get("ended_at"),
        "git": (m.get("git") or {}).get("sha"),
        "dataset": (m.get("dataset") or {}).get("combined") if m.get("dataset") else None,
        "tables": {k: f"{v['rows']} rows in {v['parts']} part(s)" for k, v in tables.items()},
        "summary": m.get("summary"),
    }
    emit(summary, args, title=f"run {run_id}")
    return 0
