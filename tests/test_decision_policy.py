"""Act / observe / abstain thresholds (cvray/calibrate/decision.py) on hand-built detections whose
precision / recall curve is written out below, the policy file, the score-kind refusals, slice
rates, and the predictions record's ``decision`` column (schema v2, v1 still read)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cvray.calibrate.decision import (DecisionPolicy, check_score_kind, choose_policy, choose_thresholds,
                                      evaluate_policy, parse_targets, policy_record, read_policy)
from cvray.calibrate.matching import MatchedDetections
from cvray.predict.records import PREDICTIONS_SCHEMA, Detections, RecordError, detections_from_table, \
    detections_to_table

# class 1: 10 detections, 8 GT objects (two never detected). At threshold t (score >= t):
#   t     0.95 0.90 0.85 0.80 0.70 0.60 0.50 0.40 0.30 0.20
#   tp?    T    T    F    T    T    F    T    F    F    T
#   n      1    2    3    4    5    6    7    8    9   10
#   prec  1.0  1.0  .667 .75  .80  .667 .714 .625 .556 .60
#   rec   1/8  2/8  2/8  3/8  4/8  4/8  5/8  5/8  5/8  6/8
S1 = [0.95, 0.90, 0.85, 0.80, 0.70, 0.60, 0.50, 0.40, 0.30, 0.20]
T1 = [1, 1, 0, 1, 1, 0, 1, 0, 0, 1]


def _matched(scores, tp, labels, image_ids=None) -> MatchedDetections:
    n = len(scores)
    return MatchedDetections(scores=np.asarray(scores, float), labels=np.asarray(labels, np.int64),
                             boxes=np.zeros((n, 4)), image_ids=np.asarray(image_ids or [1] * n, np.int64),
                             image_sizes=np.ones((n, 2)) * 100, tp=np.asarray(tp, bool),
                             ious=np.asarray(tp, float), iou_thr=0.5, score_thr=0.0)


@pytest.mark.parametrize("p, r, support, t_act, t_obs", [
    (0.8, 0.5, 1, 0.70, 0.70),    # lowest with prec >= .8 is 0.70 (.80); highest with recall >= .5 is 0.70
    (0.75, 0.6, 1, 0.70, 0.50),   # 0.80 (.75) and 0.70 (.80) qualify: the lowest; recall .625 first at 0.50
    (0.7, 0.6, 1, 0.50, 0.50),    # 0.50 has .714
    (0.95, 0.1, 1, 0.90, 0.90),   # act at 0.90 (1.0); recall .125 already at 0.95, capped at t_act
    (0.8, 0.5, 6, None, 0.70),    # >= 6 detections: best precision .714 < .8 -> never acts
    (0.6, 0.8, 1, 0.20, 0.0),     # recall .75 at most < .8 -> observe every kept detection
])
def test_thresholds_exact_on_the_hand_built_curve(p, r, support, t_act, t_obs):
    out = choose_thresholds(S1, T1, 8, act_precision=p, observe_recall=r, min_support=support)
    assert out["t_act"] == t_act and out["t_observe"] == t_obs, out
    assert (out["detections"], out["tp"], out["gt"]) == (10, 6, 8)
    if t_act is None:
        assert "unreachable" in out["act_reason"] and "0.714" in out["act_reason"] and "never acts" in out["act_reason"]
        assert out["act_support"] == 0 and out["act_precision"] is None
    else:
        assert out["act_precision"] >= p and out["act_support"] >= support and out["act_reason"] == ""
    if t_obs == 0.0:
        assert "unreachable" in out["observe_reason"] and out["observe_recall"] == pytest.approx(6 / 8)


def test_achieved_values_recorded():
    out = choose_thresholds(S1, T1, 8, act_precision=0.8, observe_recall=0.6, min_support=5)
    assert out["t_act"] == 0.70 and out["act_precision"] == pytest.approx(0.8) and out["act_support"] == 5
    assert out["act_recall"] == pytest.approx(4 / 8)
    assert out["t_observe"] == 0.50 and out["observe_recall"] == pytest.approx(5 / 8)
    assert out["observe_support"] == 7 and out["observe_precision"] == pytest.approx(5 / 7)
    # ties are one threshold: two detections at 0.5, one TP -> precision .5 there, not 1.0
    tie = choose_thresholds([0.5, 0.5], [1, 0], 1, act_precision=1.0, observe_recall=1.0, min_support=1)
    assert tie["t_act"] is None and tie["t_observe"] == 0.5
    # no GT of the class: never observes (and never acts: all FPs)
    none = choose_thresholds([0.9, 0.8], [0, 0], 0, act_precision=0.5, observe_recall=0.5, min_support=1)
    assert none["t_act"] is None and none["t_observe"] is None and "no ground-truth" in none["observe_reason"]


def _policy(**kw):
    m = _matched(S1 + [0.9, 0.3], T1 + [0, 1], [1] * 10 + [2, 2])
    chosen = choose_policy(m, {1: 8, 2: 1, 3: 4}, act_precision=0.8, observe_recall=0.6, min_support=1,
                           category_ids=[1, 2, 3])
    return policy_record(chosen, scores=kw.get("scores", "raw"), iou_thr=0.5, score_thr=0.0,
                         model={"source": "m"}, category_ids=[1, 2, 3],
                         fit={"split": "val", "image_ids_sha": "x"}, calibrator=kw.get("calibrator"))


def test_decide_and_slice_rates():
    rec = _policy()
    c = rec["classes"]
    assert (c["1"]["t_act"], c["1"]["t_observe"]) == (0.70, 0.50)
    # class 2: 0.9 FP, 0.3 TP -> precision .5 at 0.3 -> never acts; recall 1 first at 0.3
    assert c["2"]["t_act"] is None and c["2"]["t_observe"] == 0.3
    # class 3: no detections, 4 GT -> never acts, observes everything (recall 0 < .6, stated)
    assert c["3"]["t_act"] is None and c["3"]["t_observe"] == 0.0
    pol = DecisionPolicy(json.loads(json.dumps(rec)))
    assert pol.decide([0.70, 0.69, 0.50, 0.49, 0.95, 0.29, 0.01, 0.9], [1, 1, 1, 1, 2, 2, 3, 99]) == \
        ["act", "observe", "observe", "abstain", "observe", "abstain", "observe", "abstain"]
    assert pol.decide([], []) == []
    # on the fit detections of class 1: act 5 (0.95..0.70, 4 TPs), observe 2 (0.6, 0.5), abstain 3
    r = evaluate_policy(pol, _matched(S1, T1, [1] * 10), {1: 8}, category_id=1)
    assert (r["act"], r["observe"], r["abstain"]) == (5, 2, 3)
    assert r["act_rate"] + r["observe_rate"] + r["abstain_rate"] == pytest.approx(1.0)
    assert r["act_precision"] == pytest.approx(0.8) and r["seen_recall"] == pytest.approx(5 / 8)
    # a "corrupted" slice: the same scores but the top detections turned into FPs -> precision falls
    bad = evaluate_policy(pol, _matched(S1, [0, 0, 0, 1, 1, 0, 1, 0, 0, 1], [1] * 10), {1: 8})
    assert bad["act_precision"] == pytest.approx(2 / 5) and bad["act_precision"] < r["act_precision"]
    empty = evaluate_policy(pol, _matched([], [], []), {1: 3})
    assert empty["act_rate"] is None and empty["seen_recall"] == 0.0


def test_policy_file_round_trip_and_refusals(tmp_path):
    rec = _policy()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "policy.json").write_text(json.dumps(rec))
    back = read_policy(str(tmp_path / "run"))
    assert back["format"] == "cvray.policy/1" and back["uri"].endswith("policy.json")
    assert back["classes"] == json.loads(json.dumps(rec["classes"])) and back["category_ids"] == [1, 2, 3]
    with pytest.raises(ValueError, match="no decision policy"):
        read_policy(str(tmp_path / "nowhere"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a decision policy JSON"):
        read_policy(str(tmp_path / "bad.json"))
    (tmp_path / "other.json").write_text(json.dumps({"format": "cvray.calibrator/1"}))
    with pytest.raises(ValueError, match="not a cvray decision policy"):
        read_policy(str(tmp_path / "other.json"))
    broken = {**rec, "classes": {"1": {"t_act": 0.2, "t_observe": 0.9}}}
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="t_observe 0.9 > t_act 0.2"):
        read_policy(str(tmp_path / "broken.json"))
    # raw-score policy + a calibrator, calibrated-score policy without / with another calibrator
    cal = {"kind": "temperature", "calibrator": {"kind": "temperature", "temperature": 2.0}}
    check_score_kind(rec, None)
    with pytest.raises(ValueError, match="chosen on raw scores"):
        check_score_kind(rec, cal)
    crec = _policy(scores="calibrated", calibrator=cal)
    check_score_kind(crec, cal)
    with pytest.raises(ValueError, match="chosen on calibrated scores"):
        check_score_kind(crec, None)
    with pytest.raises(ValueError, match="use the calibrator of"):
        check_score_kind(crec, {"calibrator": {"kind": "temperature", "temperature": 3.0}})
    with pytest.raises(ValueError, match="needs the calibrator"):
        _policy(scores="calibrated")
    assert parse_targets("act_precision=0.9, observe_recall=0.8") == {"act_precision": "0.9", "observe_recall": "0.8"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_targets("precision=0.9")


def test_predictions_decision_column_v2_and_v1_still_read():
    d = Detections(1, 10, 10, [[0, 0, 1, 1], [1, 1, 2, 2]], [0.9, 0.2], [1, 2], decisions=["act", "abstain"])
    t = detections_to_table([d, Detections(2, 10, 10, np.zeros((0, 4)), [], [])])
    assert t.schema.metadata[b"cvray.schema_version"] == b"2" and "decision" in PREDICTIONS_SCHEMA.names
    assert t.column("decision").to_pylist() == [["act", "abstain"], None]
    back = detections_from_table(t)
    assert back[0].decisions == ["act", "abstain"] and back[1].decisions is None
    assert back[0].select([1]).decisions == ["abstain"]
    # a version-1 table (no decision column) is still read
    v1 = t.drop_columns(["decision"]).replace_schema_metadata({b"cvray.table": b"predictions",
                                                                b"cvray.schema_version": b"1"})
    old = detections_from_table(v1)
    assert [len(r) for r in old] == [2, 0] and old[0].decisions is None
    with pytest.raises(RecordError, match="decisions for 2 boxes"):
        Detections(1, 10, 10, [[0, 0, 1, 1], [1, 1, 2, 2]], [0.9, 0.2], [1, 2], decisions=["act"])


def test_policy_slices_table_on_synthetic_slices(tmp_path):
    """run_policy (the stage's driver step) on constructed slices: chosen on the fit slice only,
    a corrupted slice whose top detections turned into FPs loses precision, low light is pooled."""
    from types import SimpleNamespace

    from cvray.calibrate.config import CalibrateConfig
    from cvray.calibrate.policy_report import run_policy
    from cvray.calibrate.workflow import Slice, SliceResult
    from cvray.predict.config import PredictConfig
    from cvray.runs import start_run

    section = CalibrateConfig.model_validate({"policy": {"act_precision": 0.8, "observe_recall": 0.6,
                                                         "min_support": 1}})
    fit_s, clean_s = Slice("fit", "val", "clean", 0), Slice("eval", "test", "clean", 0)
    dark_s, bright_s = Slice("eval", "test", "low_light", 3), Slice("eval", "test", "brightness", 3)
    corrupted = [0, 0, 0, 1, 1, 0, 1, 0, 0, 1]  # same scores, the three top ones FPs

    def res(s, tp, ids):
        return SliceResult(s, _matched(S1, tp, [1] * 10, image_ids=ids), 2, 0, 10, 0.0, [], {1: 8})

    by = {fit_s: res(fit_s, T1, [1] * 10), clean_s: res(clean_s, T1, [5] * 10),
          dark_s: res(dark_s, corrupted, [5] * 10), bright_s: res(bright_s, T1, [5] * 10)}
    inputs = SimpleNamespace(model_name="m", category_ids=[1], fit=SimpleNamespace(image_ids=[1, 2]),
                             eval=SimpleNamespace(label="test", image_ids=[5, 6]), predict=PredictConfig())
    with start_run("calibrate", root=str(tmp_path), seed=0, argv=[]) as run:
        out = run_policy(run, section, inputs, [fit_s, clean_s, dark_s, bright_s], by, cal=None, calibrator_rec={},
                         fit_info={"split": "val", "image_ids": [1, 2], "image_ids_sha": "f"},
                         model_info={"source": "m"})
    rec = json.loads((tmp_path / run.id / "policy.json").read_text())
    assert (rec["classes"]["1"]["t_act"], rec["classes"]["1"]["t_observe"]) == (0.70, 0.50)
    assert rec["evaluated_on"]["shared_with_fit"] == 0 and rec["fit"]["gt"] == {"1": 8}
    rows = [r for r in run.read_table("policy_slices").to_pylist() if r["category_id"] is None]
    by_key = {(r["corruption"], r["family"]): r for r in rows if r["role"] == "eval"}
    clean, dark = by_key[("clean", "clean")], by_key[("low_light", "extra")]
    # same decisions (same scores): act 5 / observe 2 / abstain 3; precision of acted 4/5 vs 2/5
    assert (clean["act"], clean["observe"], clean["abstain"]) == (5, 2, 3) == (dark["act"], dark["observe"], dark["abstain"])
    assert clean["act_precision"] == pytest.approx(0.8) and clean["act_precision_met"] is True
    assert dark["act_precision"] == pytest.approx(0.4) and dark["act_precision_met"] is False and dark["low_light"]
    assert dark["seen_recall"] == pytest.approx(3 / 8) and clean["seen_recall"] == pytest.approx(5 / 8)
    # low light pools low_light + brightness: 20 detections, 16 GT, acted 10 of which 6 TPs
    pool = by_key[("*", "low_light")]
    assert (pool["detections"], pool["gt"], pool["act"], pool["severity"]) == (20, 16, 10, None)
    assert pool["act_precision"] == pytest.approx(6 / 10)
    assert all(r["act_rate"] + r["observe_rate"] + r["abstain_rate"] == pytest.approx(1) for r in rows)
    assert out["worst_slice"]["slice"] == "low_light/3" and out["slices"]["test/family:low_light"]["detections"] == 20
    assert out["eval_clean"]["act_precision"] == pytest.approx(0.8)


def test_cvray_predict_refuses_a_raw_policy_with_a_calibrator_before_any_run(tmp_path):
    import subprocess
    import sys

    from predict_helpers import write_images

    write_images(tmp_path / "in", 1)
    (tmp_path / "policy.json").write_text(json.dumps(_policy()))
    (tmp_path / "calibrator.json").write_text(json.dumps(
        {"format": "cvray.calibrator/1", "calibrator": {"kind": "temperature", "temperature": 2.0}}))
    p = subprocess.run([sys.executable, "-m", "cvray.cli.main", "predict", "--model", "fasterrcnn",
                        "--input", str(tmp_path / "in"), "--root", str(tmp_path / "runs"),
                        "predict.model.num_classes=3", f"predict.policy={tmp_path / 'policy.json'}",
                        f"predict.calibrator={tmp_path / 'calibrator.json'}"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert "chosen on raw scores" in p.stderr and not (tmp_path / "runs").exists(), p.stderr
