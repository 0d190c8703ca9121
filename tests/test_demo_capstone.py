"""`cvray demo` end to end with training: the model it trains detects, segments and tracks the
synthetic videos, scored against their exact ground truth, beside the tracker-only reference.

A short schedule (the demo preset with 30 steps) on small data keeps this a wiring test: it
checks that every stage ran and wrote what the summary says, and that the capstone's numbers are
the metric code's own (recomputed here from the files it wrote), not that the model is good --
``tests/test_train_overfit.py`` and ``tests/test_train_learning.py`` check learning.
"""
from __future__ import annotations

import json
import os

import pytest

from cvray.cli.main import main
from cvray.track.io import read_mot
from cvray.track.metrics.evaluate import evaluate_sequence, summarize

pytestmark = pytest.mark.slow


def test_demo_trains_then_detects_segments_and_tracks(ray_session, tmp_path, capsys):
    root = str(tmp_path / "runs")
    # no --config: as `make demo` runs it (the preset comes from cvray.train.demo)
    assert main(["demo", "--root", root, "--images", "24",
                 "--videos", "1", "synth.frames=8", "train.max_iter=30", "train.eval_period=30",
                 "train.checkpoint_period=30", "--json"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["train"]["iterations"] == 30 and s["train"]["bbox_AP50"] is not None
    cap = s["detect_track"]
    assert cap["sequences"] == 1 and cap["checkpoint"].endswith(".pt")
    seq = cap["per_sequence"][0]
    assert seq["frames"] == 8
    for video in cap["review_videos"]:
        assert os.path.getsize(video) > 0
    # the capstone's HOTA is the metric code's on the files it wrote
    mot = os.path.join(s["run_uri"], "artifacts", "dataset", "mot", seq["sequence"], "gt", "gt.txt")
    pred = os.path.join(cap["out"], f"{seq['sequence']}.txt")
    m = summarize(evaluate_sequence(read_mot(mot), read_mot(pred), num_frames=8))
    assert m["HOTA"] == pytest.approx(cap["HOTA"], abs=1e-9)
    assert "HOTA" in s["track"]  # the tracker-only reference row stays
    rob = s["robustness"]  # the trained model under 4 corruptions x 2 severities, cells on Ray
    assert rob["cells"] == 9 and rob["cells_failed"] == 0 and len(rob["per_cell_bbox_AP50"]) == 8
    assert rob["bbox_AP"]["P"] is not None and rob["clean_bbox_AP50"] is not None
    page = open(s["report"], encoding="utf-8").read()
    assert "learning curves" in page and "Detect → segment → track" in page and seq["sequence"] in page
    assert "Robustness (9 cells" in page
    # the manifest records what was trained (the CPU preset, not the library default), so the
    # demo run is a model: --model DEMO_RUN builds that network and loads its checkpoint strictly
    from cvray.models import build_model
    from cvray.predict.config import PredictConfig
    from cvray.predict.model_spec import resolve_model

    manifest = json.load(open(os.path.join(s["run_uri"], "manifest.json")))
    assert manifest["config"]["train"]["model"]["backbone"] == "small_resnet_fpn"
    assert manifest["config"]["train"]["max_iter"] == 30
    cfg, source = resolve_model(s["run_uri"], PredictConfig().model, 6)
    assert cfg.backbone == "small_resnet_fpn" and "best.pt" in source
    build_model(cfg)  # strict load: raises on any shape / key mismatch
