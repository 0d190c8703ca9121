"""Pure cores never import Ray (STYLE.md rule 1), with the Ray-free modules derived from the stage
shape (docs/architecture.md), not from a hand-kept list of names.

Only these layers may import Ray:

* a stage's Ray adapter: ``cvray/<stage>/distributed.py``;
* the run context: ``cvray/raycluster.py`` (start / join Ray) and ``cvray/runs/context.py``;
* the CLI: ``cvray/cli/*`` and ``cvray/doctor.py`` (whose checklist checks Ray itself).

Every other module is a pure core or a workflow that reaches Ray only through its stage's
``distributed.py``.
"""
import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import cvray

ROOT = Path(cvray.__file__).resolve().parent

# Modules not yet moved to the stage shape, each with its reason; this list may only shrink.
NOT_YET_MOVED: dict[str, str] = {}


def _may_import_ray(name: str) -> bool:
    parts = name.split(".")
    return (parts[-1] == "distributed" or name in ("cvray.raycluster", "cvray.runs.context", "cvray.doctor")
            or name.startswith("cvray.cli.") or name in NOT_YET_MOVED)


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(cvray.__path__, "cvray."))


def _imports_ray(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "ray" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ray" \
                and not node.level:
            return True
    return False


def _path(name: str) -> Path:
    rel = Path(*name.split(".")[1:])
    return ROOT / rel / "__init__.py" if (ROOT / rel).is_dir() else ROOT / f"{rel}.py"


def test_only_the_ray_layers_mention_ray():
    offenders = [m for m in _modules() if not _may_import_ray(m) and _imports_ray(_path(m))]
    assert not offenders, f"these modules import ray outside distributed.py / run context / CLI: {offenders}"
    assert all(_imports_ray(_path(m)) for m in NOT_YET_MOVED), "a moved module is still listed as not moved"


def test_cores_do_not_import_ray():
    mods = [m for m in _modules() if not _may_import_ray(m)]
    assert len(mods) > 10
    code = ("import sys, importlib\n"
            f"mods = {mods!r}\n"
            "bad = []\n"
            "for m in mods:\n"
            "    try:\n"
            "        importlib.import_module(m)\n"
            "    except ImportError:\n"
            "        continue  # optional backends (detectron2) are checked elsewhere\n"
            "    if 'ray' in sys.modules:\n"
            "        bad.append(m); break\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"these core modules import ray: {out.stdout}"
