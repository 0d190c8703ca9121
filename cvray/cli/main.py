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
    "cvray.cli.tune",
    "cvray.cli.robustness",
    "cvray.cli.calibrate",
    "cvray.cli.latency",
    "cvray.cli.export",
    "cvray.cli.eval",
    "cvray.cli.predict",
    "cvray.cli.report",
    "cvray.cli.track",
    "cvray.cli.submit",
]

log = logging.getLogger("cvray.cli")


class _Parser(argparse.ArgumentParser):
    """Exits 2 with one line on usage errors; a leaf command parses flags and overrides intermixed.

    ``cvray data synth --out S seed=3 --json synth.frames=8`` is one command line: positionals
    (overrides, file names) may sit on either side of any flag. argparse's
    ``parse_known_intermixed_args`` does this but refuses parsers with subcommands, so it is used
    on the leaves only (the subcommand action hands each leaf its own slice of the arguments).
    """

    _intermixed_depth = 0

    def error(self, message: str):  # usage errors exit 2 with one line
        self.print_usage(sys.stderr)
        raise CliError(message)

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixed_depth or self._subparsers is not None:
            return super().parse_known_args(args, namespace)
        self._intermixed_depth += 1
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixed_depth -= 1


# Commands with subcommands whose plain form runs a default one: ``cvray track --det ...`` is
# ``cvray track run --det ...`` (and ``cvray track eval ...`` the evaluation).
_DEFAULT_SUBCOMMAND = {"track": ("run", {"run", "eval", "-h", "--help"})}


def _with_default_subcommand(argv: list[str]) -> list[str]:
    if argv and argv[0] in _DEFAULT_SUBCOMMAND:
        default, known = _DEFAULT_SUBCOMMAND[argv[0]]
        if len(argv) == 1 or argv[1] not in known:
            return [argv[0], default, *argv[1:]]
    return argv


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
        job_argv = None
        words = _with_default_subcommand(argv)
        if words and words[0] == "submit":  # submit's own flags; the rest is the job's command line
            from cvray.cli.submit import split_submit_argv

            own, job_argv = split_submit_argv(words[1:])
            words = ["submit", *own]
        args = parser.parse_args(words)
        if job_argv is not None:
            args.job_argv = job_argv
        setup_logging(getattr(args, "verbose", False))
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        args.argv = ["cvray", *argv]
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"cvray: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        from cvray.runs.context import Terminated

        if isinstance(exc, Terminated):
            print("cvray: terminated (SIGTERM); the run is marked interrupted", file=sys.stderr)
            return 143
        print("cvray: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line; the traceback with -v
        from cvray.config import ConfigError
        from cvray.io.storage import StorageError
        from cvray.runs.errors import InputError

        if isinstance(exc, (ConfigError, InputError)):
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
