"""Shared CLI plumbing: common flags, config loading, and the one output layer.

Commands print nothing themselves while working except progress; at the end they hand a summary
dict to :func:`emit`, which prints a table (or one JSON object on stdout with ``--json``).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import math
import sys
from typing import Any, Mapping

__all__ = ["CliError", "add_common_args", "add_drift_args", "console", "drift_overrides", "emit", "load_cli_config", "one_positional"]


class CliError(Exception):
    """A usage error (bad flag, missing file): printed in one line, exit code 2."""


def add_common_args(p: argparse.ArgumentParser, config: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="print the final summary as one JSON object")
    p.add_argument("--root", default=None, help="runs root URI (default from config: ./cvray-runs)")
    p.add_argument("--address", default=None, help="Ray cluster address (default RAY_ADDRESS or local)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    if config:
        p.add_argument("--config", default=None, help="YAML experiment config (configs/*.yaml)")
        p.add_argument("overrides", nargs="*", default=[],
                       help="dotted key=value overrides, e.g. train.optim.lr=0.01 seed=3")


def add_drift_args(p: argparse.ArgumentParser, section: str) -> None:
    """``--drift`` / ``--drift-reference RUN`` / ``--drift-window N`` (``<section>.drift.*``)."""
    g = p.add_argument_group("drift monitoring")
    g.add_argument("--drift", action="store_true",
                   help=f"quality features, prediction proxies, PSI/KS windows and alerts ({section}.drift.enabled)")
    g.add_argument("--drift-reference", metavar="RUN", default=None,
                   help="compare each source with this run's reference windows (implies --drift)")
    g.add_argument("--drift-window", metavar="FRAMES", type=int, default=None,
                   help=f"frames per drift window ({section}.drift.window_frames, default 500)")


def drift_overrides(args: argparse.Namespace, section: str) -> list[str]:
    out = []
    if args.drift:
        out.append(f"{section}.drift.enabled=true")
    if args.drift_reference:
        out.append(f"{section}.drift.reference={args.drift_reference}")
    if args.drift_window is not None:
        out.append(f"{section}.drift.window_frames={args.drift_window}")
    return out


def one_positional(args: argparse.Namespace, dest: str) -> str:
    """The command's single positional ``dest``, with overrides allowed on either side of it.

    argparse hands positionals out in order, so ``cvray report seed=3 RUN`` gives ``seed=3`` to
    ``run``; the word without ``=`` is the positional, every ``key=value`` word an override.
    """
    words = [getattr(args, dest), *getattr(args, "overrides", [])]
    values = [w for w in words if "=" not in w]
    if len(values) != 1:
        raise CliError(f"expected one {dest.upper()}, got {len(values)}: {' '.join(values) or 'none'}")
    args.overrides = [w for w in words if "=" in w]
    setattr(args, dest, values[0])
    return values[0]


def load_cli_config(args: argparse.Namespace, extra: list[str] | None = None):
    """Resolve ``--config`` + overrides (+ flag-derived overrides) into an ExperimentConfig."""
    from cvray.config import load_config

    overrides = list(extra or []) + list(getattr(args, "overrides", []) or [])
    if getattr(args, "root", None):
        overrides.append(f"storage.root={args.root}")
    if getattr(args, "address", None):
        overrides.append(f"ray.address={args.address}")
    cfg = load_config(getattr(args, "config", None), overrides)
    from cvray.io.storage import S3Options, apply_to_environ

    s = cfg.storage
    apply_to_environ(S3Options(
        endpoint_url=s.endpoint_url, region=s.region,
        access_key_id=s.access_key_id.get_secret_value() if s.access_key_id else None,
        secret_access_key=s.secret_access_key.get_secret_value() if s.secret_access_key else None,
    ))
    return cfg


def console(stderr: bool = True):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v and len(v) <= 40:
            rows.extend(_flatten(v, key + "."))
        else:
            rows.append((key, v))
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1e5 else f"{v:.4g}"
    if isinstance(v, (list, tuple)) and len(v) > 8:
        return f"[{len(v)} items]"
    return str(v)


def emit(summary: Mapping[str, Any], args: argparse.Namespace, title: str = "summary") -> None:
    """Print the final summary: a table on stdout, or one JSON object with ``--json``."""
    if getattr(args, "json", False):
        # strict JSON for every command: NaN / inf (a metric with nothing to average) -> null
        sys.stdout.write(json.dumps(_jsonable(summary), default=_json_default, sort_keys=False,
                                    allow_nan=False) + "\n")
        sys.stdout.flush()
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("key")
    table.add_column("value", overflow="fold")
    for k, v in _flatten(summary):
        table.add_row(k, _fmt(v))
    Console(highlight=False, width=max(100, Console().width)).print(table)


def _jsonable(o: Any) -> Any:
    """``o`` with NumPy scalars/arrays as Python values and every non-finite float as None."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, Mapping):
        return {k: _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (str, int, bool)) or o is None:
        return o
    try:
        import numpy as np

        if isinstance(o, (np.generic, np.ndarray)):
            return _jsonable(o.tolist())
    except ImportError:
        pass
    return o


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    return str(o)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:  # Ray Data's per-dataset progress logs drown the summary; -v brings them back
        for name in ("ray.data", "ray.train", "ray.tune"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # the banner every embedded ray.init prints ("Token authentication is enabled ..."): the
        # embedded Ray is cvray's own, on 127.0.0.1; docs/cluster.md explains tokens for clusters
        logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
        # FFmpeg's own lines from OpenCV ("moov atom not found" on a broken mp4): the file is
        # named in cvray's one-line error or issue row instead. Read when OpenCV first opens a
        # video; Ray workers the embedded Ray starts inherit it.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
