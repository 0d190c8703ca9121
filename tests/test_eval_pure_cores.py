"""Style rule 1: the evaluation and prediction cores never import Ray (only pipeline.py does)."""
from __future__ import annotations

import subprocess
import sys

CORES = ["cvray.evaluate.coco", "cvray.evaluate.matching", "cvray.evaluate.errors", "cvray.evaluate.voc",
         "cvray.evaluate.confusion", "cvray.evaluate.curves", "cvray.evaluate.semantic",
         "cvray.evaluate.instance_errors", "cvray.evaluate.seg_post", "cvray.evaluate.qa_export",
         "cvray.evaluate.workflow", "cvray.evaluate.loaders", "cvray.predict.records", "cvray.predict.postprocess",
         "cvray.predict.geometry", "cvray.predict.engine", "cvray.predict.sources", "cvray.report.html"]


def test_cores_do_not_import_ray():
    code = ("import sys, importlib\n"
            f"for m in {CORES!r}: importlib.import_module(m)\n"
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
