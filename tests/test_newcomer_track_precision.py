"""Issue 18 item 22: the MOT txt ``track`` writes scores exactly as ``track`` itself scored it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cvray.cli.main import main
from cvray.data.synth_mot import make_mot
from cvray.track.io import format_mot, parse_mot


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_format_mot_round_trips_exactly():
    rng = np.random.default_rng(0)
    rows = np.zeros((50, 10))
    rows[:, 0] = np.arange(1, 51)
    rows[:, 1] = rng.integers(1, 9, 50)
    rows[:, 2:6] = rng.uniform(0, 1000, (50, 4))
    rows[:, 6] = rng.uniform(0, 1, 50)
    back = parse_mot(format_mot(rows))
    order = np.lexsort((rows[:, 1], rows[:, 0]))
    assert np.array_equal(back[:, :7], rows[order, :7])


def test_track_metrics_equal_track_eval_on_the_written_file(capsys, tmp_path):
    synth = make_mot(tmp_path / "mot", n_videos=1, seed=5, n_frames=40, n_objects=5)
    seq = synth["sequences"][0]
    out = tmp_path / "out"
    assert main(["track", "--det", seq["det"], "--seqinfo", seq["seqinfo"], "--out", str(out),
                 "--root", str(tmp_path / "runs"), "--json"]) == 0
    mine = _json(capsys)["metrics"]
    txt = next(out.glob("*.txt"))
    assert main(["track", "eval", "--gt", seq["gt"], "--pred", str(txt), "--json",
                 "--root", str(tmp_path / "runs")]) == 0
    theirs = _json(capsys)["combined"]
    compared = [k for k in ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1") if k in mine]
    assert {"HOTA", "MOTP"} <= set(compared)
    for k in compared:
        assert theirs[k] == pytest.approx(mine[k], abs=1e-6), k
