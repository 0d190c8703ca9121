"""Issue 18 item 21: every command's ``--json`` output is strict JSON (NaN / inf -> null)."""
from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import motmetrics
import numpy as np

from cvray.cli.common import emit
from cvray.cli.main import main

TUD = Path(motmetrics.__file__).parent / "data"


def _strict(text: str):
    def no_constant(name):
        raise ValueError(f"not strict JSON: bare {name}")
    return json.loads(text, parse_constant=no_constant)


def test_emit_maps_non_finite_to_null(capsys):
    summary = {"a": float("nan"), "b": [1.0, float("inf"), -math.inf], "c": {"d": np.float32("nan")},
               "e": np.array([1.5, np.nan]), "f": (np.float64(2.5), np.int64(3)), "g": "NaN", "h": None}
    emit(summary, argparse.Namespace(json=True))
    out = _strict(capsys.readouterr().out)
    assert out == {"a": None, "b": [1.0, None, None], "c": {"d": None}, "e": [1.5, None],
                   "f": [2.5, 3], "g": "NaN", "h": None}


def test_track_eval_json_of_a_sequence_without_output_is_strict(capsys, tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    shutil.copy(TUD / "TUD-Campus" / "gt.txt", gt / "TUD-Campus.txt")
    shutil.copy(TUD / "TUD-Stadtmitte" / "gt.txt", gt / "TUD-Stadtmitte.txt")
    shutil.copy(TUD / "TUD-Campus" / "test.txt", pred / "TUD-Campus.txt")
    assert main(["track", "eval", "--gt", str(gt), "--pred", str(pred), "--json",
                 "--root", str(tmp_path / "runs")]) == 0
    out = _strict(capsys.readouterr().out.strip().splitlines()[-1])
    seq = out["TUD-Stadtmitte"]
    assert seq["devkit"]["MOTP"] is None and seq["IDP"] is None and seq["FN"] == 1156
