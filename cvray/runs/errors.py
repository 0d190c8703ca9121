"""The one exception a workflow raises for bad input the user named (a file, a model, a flag).

``InputError`` is what a stage's ``prepare_<stage>`` / ``run_<stage>`` raises when an input given
on the command line cannot be used at all (missing, unreadable, the wrong kind): the CLI prints
its message in one line and exits 2. Problems found *inside* readable data are issue rows, not
exceptions (one bad record never ends a job).
"""
from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """An input named by the user is unusable; the message names it and says what is wrong."""
