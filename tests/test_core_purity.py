"""Pure cores never import Ray (STYLE.md rule 1): checked in a fresh interpreter per module."""
import pkgutil
import subprocess
import sys

import cvray

# Modules allowed to import Ray: the thin adapters and the CLI.
ADAPTER_MARKERS = ("distributed", "ray_", "raycluster", "ingest", "workflows", "cli.", "pipeline",
                   "doctor", ".demo", "tune")


def _core_modules():
    for m in pkgutil.walk_packages(cvray.__path__, "cvray."):
        if not any(k in m.name for k in ADAPTER_MARKERS):
            yield m.name


def test_cores_do_not_import_ray():
    mods = sorted(_core_modules())
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
