"""A worker node removed from a multi-node ``ray.cluster_utils.Cluster`` mid-run: every input
still yields exactly one row (prediction or issue).

The cluster lives in a subprocess (tests/node_failure_driver.py) so it never touches the
session-wide ``ray_session`` Ray of the other tests.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_node_removed_mid_run_every_row_once(tmp_path):
    driver = Path(__file__).with_name("node_failure_driver.py")
    proc = subprocess.run([sys.executable, str(driver), str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["removed_at"] is not None          # the node really went away mid-run ...
    assert out["alive_nodes_after"] == 2          # ... (head + one worker left)
    ids = out["pred_ids"] + out["issue_ids"]
    assert sorted(ids) == list(range(1, out["inputs"] + 1))   # every image exactly once
    assert len(out["issue_ids"]) == 1                          # the truncated JPEG
    assert out["summary"]["prediction_rows"] + out["summary"]["issue_rows"] == out["inputs"] == 9
