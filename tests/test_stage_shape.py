"""Every stage has the one shape of docs/architecture.md: ``cvray/<stage>/config.py`` (its typed
sections), ``cvray/<stage>/workflow.py`` whose entry points are ``run_<name>(run, section, inputs,
*, ...)`` (keyword-only extras such as ``ray`` and ``on_progress``), and the stages table of the
architecture doc names every entry point that exists (and none that does not)."""
from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import cvray

ROOT = Path(cvray.__file__).resolve().parent
DOC = ROOT.parent / "docs" / "architecture.md"
STAGES = ["data", "validate", "train", "tune", "predict", "evaluate", "track", "robustness", "calibrate", "latency", "export", "submit"]
# entry points that live beside the workflow (a sub-stage with its own module)
EXTRA = {"cvray.track.evaluation": ["run_track_eval"]}


def _entry_points() -> dict[str, object]:
    found = {}
    for stage in STAGES:
        mod = importlib.import_module(f"cvray.{stage}.workflow")
        for name, fn in vars(mod).items():
            if name.startswith("run_") and inspect.isfunction(fn) and fn.__module__ == mod.__name__:
                found[f"{mod.__name__}.{name}"] = fn
    for modname, names in EXTRA.items():
        mod = importlib.import_module(modname)
        found.update({f"{modname}.{n}": getattr(mod, n) for n in names})
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_stage_has_config_and_workflow_modules(stage):
    assert (ROOT / stage / "config.py").is_file(), f"cvray/{stage}/config.py (its typed section) is missing"
    assert (ROOT / stage / "workflow.py").is_file(), f"cvray/{stage}/workflow.py is missing"


def test_every_entry_point_takes_run_section_inputs_then_keywords():
    eps = _entry_points()
    assert len(eps) >= 10, sorted(eps)
    for name, fn in eps.items():
        params = list(inspect.signature(fn).parameters.values())
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        assert positional == ["run", "section", "inputs"], (name, positional)
        for p in params[3:]:
            assert p.kind is p.KEYWORD_ONLY, (name, p.name)


def test_the_architecture_doc_names_every_entry_point():
    text = DOC.read_text()
    named = set(re.findall(r"`(cvray\.[a-z_.]+\.run_[a-z_]+)", text))
    eps = set(_entry_points())
    assert eps <= named, f"entry points missing from docs/architecture.md: {sorted(eps - named)}"
    assert named <= eps, f"docs/architecture.md names entry points that do not exist: {sorted(named - eps)}"
