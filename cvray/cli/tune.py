"""``cvray tune --config configs/tune/demo.yaml [--dataset URI] [key=value ...] [--resume RUN] [--json]``.

A hyperparameter search over ``train.*`` keys (``tune.space``) with Ray Tune: every trial is a
``cvray train`` run that reports val metrics at every evaluation; ASHA (default), HyperBand or
PBT stop, pause or exploit trials; random search or Optuna TPE suggest them. Ctrl-C or SIGTERM
(``ray job stop``) stop it gracefully (exit 130 / 143, the run ends ``interrupted``); ``--resume
RUN`` continues it with the config it started with: finished trials are kept, unfinished ones
continue from their last checkpoint.
"""
from __future__ import annotations

import argparse
import os

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config


def register(sub) -> None:
    p = sub.add_parser("tune", help="hyperparameter search over train.* with Ray Tune (resumable)")
    add_common_args(p)
    p.add_argument("--dataset", default=None, help="COCO dataset root (default: data.root from the config)")
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="continue the search of run RUN (its stored config; no other config or overrides)")
    p.set_defaults(func=cmd_tune)


SESSION_KEYS = ("storage.", "ray.")  # where this session runs, not what the search is


def _resume_config(args: argparse.Namespace):
    """The config the run RUN started with (``tune_config.json``, written before its first trial),
    with this session's ``storage.*`` / ``ray.*`` settings (``--root``, ``--address`` or overrides)."""
    import tempfile

    import yaml

    from cvray.config import load_config
    from cvray.io import storage
    from cvray.runs.run import check_run_id

    search = [o for o in args.overrides if not o.startswith(SESSION_KEYS)]
    if args.config or args.dataset or search:
        raise CliError("--resume RUN continues RUN with the config it started with: drop --config, --dataset "
                       f"and overrides other than storage.* / ray.* ({' '.join(search) or '--config/--dataset'})")
    session = load_cli_config(argparse.Namespace(config=None, overrides=args.overrides, root=args.root,
                                                 address=args.address))
    check_run_id(args.resume)
    uri = storage.join(session.storage.root, args.resume, "tune_config.json")
    if not storage.exists(uri):
        raise CliError(f"--resume {args.resume}: no tune run there ({uri} is missing)")
    stored = storage.read_json(uri)
    stored.pop("storage", None)  # this session's storage (secrets are never stored anyway)
    stored.pop("ray", None)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(stored, f)
    try:
        cfg = load_config(f.name, [*args.overrides, f"storage.root={session.storage.root}",
                                   *([f"ray.address={args.address}"] if args.address else [])])
    finally:
        os.unlink(f.name)
    return cfg, stored.get("data", {}).get("root")


def cmd_tune(args: argparse.Namespace) -> int:
    from cvray.cli.progress import Progress
    from cvray.data.fingerprint import coco_fingerprint
    from cvray.data.workflow import coco_layout
    from cvray.runs import run_context
    from cvray.tune.workflow import prepare_tune, run_tune

    if args.resume:
        cfg, dataset = _resume_config(args)
    else:
        cfg, dataset = load_cli_config(args), args.dataset
    inputs = prepare_tune(cfg.tune, cfg, dataset=dataset, resume=bool(args.resume))
    inputs.config.setdefault("data", {})["root"] = inputs.dataset  # so --resume and best_config.yaml find it

    def fingerprint():
        try:
            return coco_fingerprint(coco_layout(inputs.dataset))
        except FileNotFoundError:
            return {"uri": inputs.dataset}

    with run_context("tune", cfg, argv=args.argv, ray=True, address=args.address, run_id=args.resume,
                     dataset=fingerprint) as run:
        with Progress("cvray tune", "trial", cfg.tune.num_samples) as progress:
            summary = run_tune(run, cfg.tune, inputs, ray=True, on_progress=progress)
    if not args.json:
        _print_trials(run)
    out = {"run": run.id, "run_uri": run.uri, **{k: v for k, v in summary.items() if k != "plots"},
           "plots": summary.get("plots")}
    emit(out, args, title="cvray tune")
    # a failed unit of work (an errored trial) exits 1, with the count in the summary
    return 1 if summary.get("by_status", {}).get("error") else 0


def _print_trials(run) -> None:
    """One line per trial (stderr): status, iterations, metric, the sampled values."""
    import json

    from rich.console import Console
    from rich.table import Table

    try:
        rows = run.read_table("trials").to_pylist()
    except Exception:  # nothing written
        return
    table = Table(title="trials", header_style="bold")
    for c in ("trial", "status", "iterations", "best", "last", "sampled"):
        table.add_column(c)
    for r in rows:
        fmt = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
        sampled = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in json.loads(r["sampled"]).items())
        status = r["status"] + (f" @{r['stop_rung']}" if r["stop_rung"] is not None else "")
        table.add_row(r["trial_id"], status, str(r["iterations"]), fmt(r["best_metric"]), fmt(r["last_metric"]), sampled)
    Console(stderr=True, highlight=False, width=max(100, Console().width)).print(table)
