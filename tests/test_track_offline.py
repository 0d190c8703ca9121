"""`cvray track --offline [MAX_GAP]`: the opt-in offline post-process (gap interpolation, which uses
future frames) is written and scored apart; the online outputs and numbers do not change."""
from __future__ import annotations

import json

import numpy as np

from cvray.cli.main import main
from cvray.track.io import read_mot


def test_offline_is_reported_apart_and_leaves_online_unchanged(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "ds"), "--images", "1", "--videos", "1",
                 "synth.image_size=[64,64]", "synth.frames=30", "--root", str(tmp_path / "r"), "--json"]) == 0
    det = tmp_path / "ds" / "mot" / "SYN-01" / "det" / "det.txt"
    capsys.readouterr()
    base = ["track", "--det", str(det), "--root", str(tmp_path / "r"), "--json"]
    assert main([*base, "--out", str(tmp_path / "on")]) == 0
    online = json.loads(capsys.readouterr().out)
    assert main([*base, "--out", str(tmp_path / "off"), "--offline", "5"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["metrics"] == online["metrics"]                      # online numbers unchanged
    assert both["metrics_offline"]["max_gap"] == 5 and "combined" in both["metrics_offline"]
    on_rows = read_mot(str(tmp_path / "off" / "SYN-01.txt"))
    off_rows = read_mot(str(tmp_path / "off" / "offline" / "SYN-01.txt"))
    assert np.array_equal(on_rows, read_mot(str(tmp_path / "on" / "SYN-01.txt")))
    assert len(off_rows) > len(on_rows)                              # gaps filled, nothing dropped
    assert both["metrics_offline"]["combined"]["FN"] <= online["metrics"]["FN"]
    assert main([*base, "--out", str(tmp_path / "x"), "--offline", "0"]) == 2
