"""Validation rules emit their rows through :func:`issue` (stage ``validate``).

The catalogue itself (rule id -> severity, description) is :data:`cvray.runs.issues.RULES`, shared
by every stage; rule modules (:mod:`images`, :mod:`schema`, :mod:`boxes`, :mod:`masks`,
:mod:`classes`, :mod:`leakage`, :mod:`baselines`) call :func:`issue` here for the stage name.
"""
from __future__ import annotations

from cvray.runs.issues import RULES as ALL_RULES
from cvray.runs.issues import Issue, Rule
from cvray.runs.issues import issue as _issue

__all__ = ["RULES", "Rule", "issue"]

STAGE = "validate"

# the rule families validation checks (a view of the shared catalogue, not a copy of it)
_FAMILIES = ("image", "schema", "box", "mask", "class", "leak", "dup", "baseline")
RULES: dict[str, Rule] = {n: r for n, r in ALL_RULES.items() if n.split(".")[0] in _FAMILIES}


def issue(rule: str, message: str, *, file: str | None = None, image_id=None,
          annotation_id=None) -> Issue:
    """An issue row of the ``validate`` stage for a catalogued rule."""
    return _issue(STAGE, rule, message, file=file, image_id=image_id, annotation_id=annotation_id)
