"""``cvray <command> [flags] [key=value ...]`` — one CLI, same config locally and on a cluster."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from cvray.cli.common import CliError, setup_logging

# Each command module exposes ``register(subparsers)``; a module that fails to import (an optional
# stage) is left out of the CLI with a logged reason instead of breaking every command.
COMMAND_MODULES = [
    "cvray.cli.data",
    "cvray.cli.runs",
    "cvray.cli.doctor",
    "cvray.cli.demo",
    "cvray.cli.validate",
    "cvray.cli.train",
    "cvray.cli.eval",
    "cvray.cli.predict",
    "cvray.cli.report",
    "cvray.cli.track",
]

log = logging.getLogger("cvray.cli")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors exit 2 with one line
        self.print_usage(sys.stderr)
        raise CliError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cvray", description=__doc__)
    from cvray import __version__

    parser.add_argument("--version", action="version", version=f"cvray {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            if exc.name == name:  # not written yet
                continue
            log.warning("command module %s unavailable: %s", name, exc)
            continue
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        setup_logging(getattr(args, "verbose", False))
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        args.argv = ["cvray", *argv]
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"cvray: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cvray: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line; the traceback with -v
        from cvray.config import ConfigError
        from cvray.io.storage import StorageError

        if isinstance(exc, (ConfigError,)):
            print(f"cvray: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, StorageError):
            print(f"cvray: storage error: {exc}", file=sys.stderr)
            return 1
        if "-v" in argv or "--verbose" in argv:
            raise
        print(f"cvray: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
