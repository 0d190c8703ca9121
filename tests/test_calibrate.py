"""``cvray calibrate`` end to end with a model that really detects (tests/robustness_helpers.py: 80
steps on the easy synthetic set, trained here): slices on Ray model actors, calibrators fitted on
val only and scored on test and a corruption slice, the tables / diagrams / calibrator.json, ``cvray
predict`` applying the saved calibrator, the no-test-split fallback, ``--robustness RUN``, and the
refusals (exit 2, one line, no run); the act / observe / abstain policy chosen on val (``--policy``),
its ``policy_slices`` on every slice, and ``cvray predict`` tagging every detection with it."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cvray.cli.main import main
from cvray.io import storage
from cvray.runs import list_runs


def _table(run_uri: str, name: str) -> list[dict]:
    return storage.read_table_dir(storage.join(run_uri, "tables", name)).to_pylist()


def _ids(data: str, split: str) -> set[int]:
    return {im["id"] for im in json.loads(Path(data, "annotations", f"instances_{split}.json").read_text())["images"]}


def _cli(argv: list[str]) -> tuple[int, dict]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    return rc, (json.loads(buf.getvalue().strip().splitlines()[-1]) if rc in (0, 1) else {})


@pytest.fixture(scope="module")
def model(cpu_test_model):
    return cpu_test_model


CALIBRATE = ["--corruptions", "gaussian_noise", "--severities", "1,5", "calibrate.score_thr=0.1", "--method", "all"]
# targets this weak test model reaches on val for both classes (t_act exists), not on test
POLICY = ["--policy", "act_precision=0.2,observe_recall=0.4,min_support=5"]


@pytest.fixture(scope="module")
def calibrated(model, tmp_path_factory):
    """Fit on val, eval on test clean + gaussian_noise at severities 1 and 5 (in this process)."""
    run_uri, data = model
    root = str(tmp_path_factory.mktemp("calibrate-runs"))
    rc, out = _cli(["calibrate", "--model", run_uri, "--data", data, *CALIBRATE, *POLICY, "--no-ray", "--root", root,
                    "--json"])
    assert rc == 0, out
    return out


def test_calibration_fits_on_val_and_scores_every_slice(model, calibrated):
    from cvray.report.html import build_report

    _check_calibration(model, calibrated)
    page = build_report(calibrated["run_uri"])
    assert "Calibration (fitted on val, evaluated on test" in page and page.count("data:image/png") >= 4


def _check_calibration(model, out):
    run_uri, data = model
    assert out["fit_split"] == "val" and out["eval_split"] == "test" and out["split_note"] is None
    assert out["slices"] == 4 and out["slices_failed"] == 0
    rows = _table(out["run_uri"], "calibration")
    overall = [r for r in rows if r["category_id"] is None]
    # one row per (slice, method, metric): the fit slice plus 3 eval slices, 4 methods, 3 metrics
    keys = [(r["role"], r["corruption"], r["severity"], r["method"], r["metric"]) for r in overall]
    assert len(keys) == len(set(keys)) == 4 * 4 * 3
    assert {(c, s) for role, c, s, *_ in keys if role == "eval"} == {("clean", 0), ("gaussian_noise", 1),
                                                                     ("gaussian_noise", 5)}
    assert all(r["iou_thr"] == 0.5 and r["score_thr"] == 0.1 for r in rows)  # the stated thresholds
    assert {json.loads(r["bins"])["confidence"] for r in overall if r["metric"] == "ece"} == {10}
    assert {tuple(json.loads(r["bins"]).values()) for r in overall if r["metric"] == "dece"} == {(5,) * 5}
    assert {r["category_id"] for r in rows} == {None, 1, 2}  # the per-class breakdown
    # the calibrators were fitted on val only: its image ids, none of test's
    rec = json.loads(Path(out["run_uri"], "calibrator.json").read_text())
    assert rec["kind"] == "temperature" and rec["iou_thr"] == 0.5 and rec["score_thr"] == 0.1
    assert set(rec["fit"]["image_ids"]) == _ids(data, "val") and not set(rec["fit"]["image_ids"]) & _ids(data, "test")
    assert rec["model"]["spec"] == run_uri and rec["category_ids"] == [1, 2]
    # on held-out test the raw scores are miscalibrated and the val-fitted calibrators help, by a margin
    by = {(r["corruption"], r["severity"], r["method"], r["metric"]): r["value"] for r in overall
          if r["role"] == "eval"}
    before = by[("clean", 0, "uncalibrated", "ece")]
    assert before > 0.05, before
    for method in ("temperature", "platt", "isotonic"):
        assert by[("clean", 0, method, "ece")] <= 0.8 * before, (method, by[("clean", 0, method, "ece")], before)
    assert by[("clean", 0, "isotonic", "laece")] <= by[("clean", 0, "uncalibrated", "laece")]
    assert out["eval"]["test/clean/0"]["temperature"]["ece"] == pytest.approx(by[("clean", 0, "temperature", "ece")],
                                                                            abs=1e-6)
    # the diagrams: overall and per class, before and after, PNG; their data in calibration_bins
    for method in ("uncalibrated", "temperature", "isotonic"):
        for kind in ("ece", "ece_per_class", "laece"):
            png = Path(out["diagrams"][f"eval__test__clean__s0/{method}_{kind}"])
            assert png.read_bytes()[:4] == b"\x89PNG", png
    bins = [b for b in _table(out["run_uri"], "calibration_bins") if b["role"] == "eval" and b["corruption"] == "clean"
            and b["method"] == "uncalibrated" and b["metric"] == "ece" and b["category_id"] is None]
    assert len(bins) == 10 and sum(b["count"] for b in bins) == by_n(overall)


def by_n(rows: list[dict]) -> int:
    return next(r["n"] for r in rows if r["role"] == "eval" and r["corruption"] == "clean"
                and r["method"] == "uncalibrated" and r["metric"] == "ece")


def test_predict_applies_the_saved_calibrator(model, calibrated):
    """predict.calibrator=<calibrate run> through prepare_predict into the Predictor (the code the
    Ray Data actors run): scores = calibrator(raw scores); boxes, labels, order unchanged."""
    from cvray.calibrate.policy import ScoreCalibration
    from cvray.config import load_config
    from cvray.predict.engine import ModelFactory, Predictor, predict_local
    from cvray.predict.workflow import prepare_predict

    run_uri, data = model
    gt = str(Path(data, "annotations", "instances_test.json"))
    cfg = load_config(None, [f"predict.calibrator={calibrated['run_uri']}"])
    inputs = prepare_predict(cfg.predict, input=gt, model=run_uri)
    assert inputs.calibrator["kind"] == "temperature" and inputs.calibrator["uri"].endswith("calibrator.json")
    pred = Predictor(ModelFactory(inputs.model), category_ids=inputs.category_ids, num_threads=1)
    raw, _ = predict_local(inputs.units, pred, cfg.predict.geometry)
    pred.calibration = ScoreCalibration(inputs.calibrator)
    got, _ = predict_local(inputs.units, pred, cfg.predict.geometry)
    _same_but_calibrated(raw, {d.image_id: d.to_row() for d in got}, pred.calibration)


def _same_but_calibrated(raw, got: dict, cal) -> None:
    assert len(got) == len(raw) == 12 and sum(len(d) for d in raw) > 0
    for d in raw:
        g = got[d.image_id]
        np.testing.assert_allclose(np.asarray(g["boxes"]).reshape(-1, 4), d.boxes, atol=1e-4)
        assert list(g["labels"]) == d.labels.tolist()
        np.testing.assert_allclose(g["scores"], cal.calibrate(d.scores, d.labels), atol=1e-6)
        assert (np.diff(g["scores"]) <= 1e-12).all()  # a global calibrator keeps the ranking
    assert not np.allclose(np.concatenate([d.scores for d in raw]),
                           np.concatenate([got[d.image_id]["scores"] for d in raw]))


@pytest.mark.slow
def test_on_ray_actors_then_cvray_predict_applies_it(model, calibrated, ray_session, tmp_path):
    """The same calibration on 2 Ray model actors gives the same table; ``cvray predict`` (Ray Data)
    with ``predict.calibrator`` writes calibrated scores and says so in its manifest."""
    from cvray.calibrate.policy import ScoreCalibration, read_calibrator
    from cvray.config import load_config
    from cvray.predict.engine import ModelFactory, Predictor, predict_local
    from cvray.predict.model_spec import resolve_model
    from cvray.predict.sources import list_units

    run_uri, data = model
    rc, out = _cli(["calibrate", "--model", run_uri, "--data", data, *CALIBRATE, "calibrate.workers=2",
                    "--root", str(tmp_path / "cal"), "--json"])
    assert rc == 0, out
    _check_calibration(model, out)
    for label, per in calibrated["eval"].items():  # a slice is a pure function of its inputs
        for method, values in per.items():
            assert out["eval"][label][method] == pytest.approx(values, abs=1e-6), (label, method)
    gt = str(Path(data, "annotations", "instances_test.json"))
    rc, pred = _cli(["predict", "--model", run_uri, "--input", gt, f"predict.calibrator={out['run_uri']}",
                     "predict.num_actors=1", "--root", str(tmp_path / "runs"), "--json"])
    assert rc == 0, pred
    assert pred["scores"]["scores"] == "calibrated" and pred["scores"]["kind"] == "temperature"
    assert list_runs(str(tmp_path / "runs"))[0]["scores"]["calibrator"].endswith("calibrator.json")
    got = {r["image_id"]: r for r in _table(pred["run_uri"], "predictions")}
    cfg = load_config(None, [])
    mcfg, _ = resolve_model(run_uri, cfg.predict.model, 2)
    raw, _ = predict_local(list_units(gt), Predictor(ModelFactory(mcfg), category_ids=[1, 2], num_threads=1),
                           cfg.predict.geometry)
    _same_but_calibrated(raw, got, ScoreCalibration(read_calibrator(out["run_uri"])))


def _copy_dataset(data: str, dst: Path, splits: tuple[str, ...]) -> str:
    (dst / "annotations").mkdir(parents=True)
    (dst / "images").symlink_to(Path(data, "images").resolve())
    for s in splits:
        shutil.copy(Path(data, "annotations", f"instances_{s}.json"), dst / "annotations")
    return str(dst)


def test_other_fit_split_other_calibrator_and_the_no_test_fallback(model, calibrated, tmp_path):
    run_uri, data = model
    out = calibrated
    root = str(tmp_path / "runs")
    common = ["--model", run_uri, "--method", "temperature", "calibrate.diagrams=none", "--no-ray", "--root", root,
              "--json"]
    # fitted on train instead of val: another temperature (the fit split is what it learns from)
    rc, other = _cli(["calibrate", "--data", data, "--fit-split", "train", "calibrate.max_images=12", *common])
    assert rc == 0
    t_val = out["calibrators"]["temperature"]["temperature"]
    assert other["calibrators"]["temperature"]["temperature"] != pytest.approx(t_val, rel=1e-3)
    rec = json.loads(Path(other["run_uri"], "calibrator.json").read_text())
    assert set(rec["fit"]["image_ids"]) <= _ids(data, "train")
    # no test split: val halved by sorted image id (even positions fit, odd evaluate), and said so
    halved = _copy_dataset(data, tmp_path / "no-test", ("train", "val"))
    rc, half = _cli(["calibrate", "--data", halved, *common])
    assert rc == 0
    assert half["fit_split"] == "val/even" and half["eval_split"] == "val/odd" and "halved" in half["split_note"]
    assert half["fit_images"] == half["eval_images"] == 6 and half["fit_eval_shared_images"] == 0
    val = sorted(_ids(data, "val"))
    rec = json.loads(Path(half["run_uri"], "calibrator.json").read_text())
    assert rec["fit"]["image_ids"] == val[0::2]
    assert {r["split"] for r in _table(half["run_uri"], "calibration")} == {"val/even", "val/odd"}


def test_robustness_run_gives_the_slices(model, tmp_path):
    run_uri, data = model
    suite = tmp_path / "runs" / "20260101-000000-robustness-abcdef"
    suite.mkdir(parents=True)
    (suite / "robustness_inputs.json").write_text(json.dumps({
        "model": run_uri, "data": data, "split": "val", "seed": 7,
        "robustness": {"corruptions": ["contrast"], "severities": [2], "seed": None}}))
    rc, out = _cli(["calibrate", "--robustness", suite.name, "--method", "isotonic", "calibrate.max_images=4",
                    "calibrate.diagrams=none", "--no-ray", "--root", str(tmp_path / "runs"), "--json"])
    assert rc == 0
    assert out["corruptions"] == ["contrast"] and out["severities"] == [2] and out["seed"] == 7
    assert out["robustness_run"] == suite.name
    rows = _table(out["run_uri"], "calibration")
    assert {(r["corruption"], r["severity"]) for r in rows if r["role"] == "eval"} == {("clean", 0), ("contrast", 2)}


def test_refusals_exit_2_one_line_no_run(model, tmp_path, capsys):
    run_uri, data = model
    root = str(tmp_path / "runs")
    three = tmp_path / "three"
    _copy_dataset(data, three, ("val", "test"))
    for s in ("val", "test"):
        p = three / "annotations" / f"instances_{s}.json"
        d = json.loads(p.read_text())
        d["categories"].append({"id": 3, "name": "triangle", "supercategory": "shape"})
        p.write_text(json.dumps(d))
    cases = [
        (["--data", data, "--method", "softmax"], "unknown calibration method 'softmax'"),
        (["--data", data, "--fit-split", "nosuch"], "no nosuch split"),
        (["--data", data, "--eval-split", "nosuch"], "no nosuch split"),
        (["--data", str(three)], "trained on 2 classes"),
        (["--data", data, "--robustness", "nosuch-run"], "--robustness nosuch-run"),
        (["--data", data, "--robustness", "x", "--corruptions", "fog"], "takes the suite's corruptions"),
        (["--data", data, "--corruptions", "not_a_corruption"], "not_a_corruption"),
    ]
    ckpt = str(Path(run_uri, "checkpoints", "best.pt"))  # a bare checkpoint of 2 classes, 3 in the data
    cases.append((["--data", str(three), "--model", ckpt, *(f"predict.model.{k}={json.dumps(v)}" for k, v in
                   json.loads(Path(run_uri, "manifest.json").read_text())["config"]["train"]["model"].items()
                   if k not in ("num_classes", "weights") and v is not None and not isinstance(v, dict))],
                  "does not load"))
    for extra, message in cases:
        model = [] if "--model" in extra else ["--model", run_uri]
        assert main(["calibrate", *model, *extra, "--no-ray", "--root", root]) == 2, extra
        err = capsys.readouterr().err.strip()
        # one line; a config value error is cvray's two-line form (the header, then the key)
        assert message in err and "Traceback" not in err and len(err.splitlines()) <= 2, (extra, err)
    assert main(["predict", "--model", run_uri, "--input", data, "predict.calibrator=/nonexistent",
                 "--root", root]) == 2
    err = capsys.readouterr().err.strip()
    assert "predict.calibrator" in err and len(err.splitlines()) == 1, err
    assert not Path(root).exists() or not list_runs(root)


# ---------------------------------------------------------------- the act / observe / abstain policy

def test_policy_chosen_on_val_only_and_scored_on_every_slice(model, calibrated):
    from cvray.calibrate.policy import ids_fingerprint
    from cvray.report.html import build_report

    run_uri, data = model
    rec = json.loads(Path(calibrated["run_uri"], "policy.json").read_text())
    assert rec["format"] == "cvray.policy/1" and rec["scores"] == "raw" and rec["calibrator"] is None
    assert rec["targets"] == {"act_precision": 0.2, "observe_recall": 0.4, "min_support": 5}
    assert rec["iou_thr"] == 0.5 and rec["category_ids"] == [1, 2] and rec["model"]["spec"] == run_uri
    # chosen on val only: its ids and fingerprint; test's images never seen
    val, test = _ids(data, "val"), _ids(data, "test")
    assert set(rec["fit"]["image_ids"]) == val and rec["fit"]["image_ids_sha"] == ids_fingerprint(sorted(val))
    assert not val & test and rec["evaluated_on"]["shared_with_fit"] == 0
    assert rec["evaluated_on"]["image_ids_sha"] == ids_fingerprint(sorted(test))
    for c, t in rec["classes"].items():
        assert t["t_act"] is not None and t["t_observe"] <= t["t_act"], (c, t)
        assert t["act_precision"] >= 0.2 and t["act_support"] >= 5
    rows = _table(calibrated["run_uri"], "policy_slices")
    for r in rows:  # every detection gets exactly one decision
        assert r["act"] + r["observe"] + r["abstain"] == r["detections"], r
        if r["detections"]:
            assert r["act_rate"] + r["observe_rate"] + r["abstain_rate"] == pytest.approx(1.0)
    overall = {(r["role"], r["corruption"], r["severity"], r["family"]): r for r in rows if r["category_id"] is None}
    assert set(overall) == {("fit", "clean", 0, "clean"), ("eval", "clean", 0, "clean"),
                            ("eval", "gaussian_noise", 1, "noise"), ("eval", "gaussian_noise", 5, "noise"),
                            ("eval", "*", None, "noise")}
    # in-sample on val, each class's acted detections reach the target (that is how t_act was chosen)
    fit = [r for r in rows if r["role"] == "fit" and r["category_id"] is not None]
    assert len(fit) == 2 and all(r["act_precision"] >= 0.2 and r["act_precision_met"] for r in fit)
    assert overall[("fit", "clean", 0, "clean")]["seen_recall"] >= 0.4
    # heavy noise: the scores fall, the policy abstains more and sees fewer objects
    clean, noisy = overall[("eval", "clean", 0, "clean")], overall[("eval", "gaussian_noise", 5, "noise")]
    assert noisy["abstain_rate"] > clean["abstain_rate"] and noisy["seen_recall"] < clean["seen_recall"]
    assert noisy["act_rate"] < clean["act_rate"]
    pooled = overall[("eval", "*", None, "noise")]
    assert pooled["detections"] == overall[("eval", "gaussian_noise", 1, "noise")]["detections"] + noisy["detections"]
    assert pooled["gt"] == 2 * clean["gt"] and clean["gt"] > 0
    pol = calibrated["policy"]
    assert pol["eval_clean"]["abstain_rate"] == pytest.approx(clean["abstain_rate"], abs=1e-4)
    assert Path(pol["plot"]).read_bytes()[:4] == b"\x89PNG"
    page = build_report(calibrated["run_uri"])
    assert "Decision policy (chosen on the fit split, raw scores" in page


def test_predict_tags_every_detection_with_its_decision(model, calibrated):
    """predict.policy=<calibrate run> through prepare_predict into the Predictor (the code the Ray
    Data actors run): one decision per kept detection, the policy's thresholds on the raw scores."""
    from cvray.calibrate.decision import DecisionPolicy
    from cvray.config import load_config
    from cvray.predict.engine import ModelFactory, Predictor, predict_local
    from cvray.predict.records import detections_from_table, detections_to_table
    from cvray.predict.workflow import prepare_predict

    run_uri, data = model
    gt = str(Path(data, "annotations", "instances_test.json"))
    cfg = load_config(None, [f"predict.policy={calibrated['run_uri']}"])
    inputs = prepare_predict(cfg.predict, input=gt, model=run_uri)
    assert inputs.policy["uri"].endswith("policy.json")
    pred = Predictor(ModelFactory(inputs.model), category_ids=inputs.category_ids, num_threads=1, policy=inputs.policy)
    dets, _ = predict_local(inputs.units, pred, cfg.predict.geometry)
    pol = DecisionPolicy(inputs.policy)
    seen = []
    for d in dets:
        assert d.decisions == pol.decide(d.scores, d.labels) and len(d.decisions) == len(d)
        seen += d.decisions
    assert {"act", "abstain"} <= set(seen) <= {"act", "observe", "abstain"}
    back = detections_from_table(detections_to_table(dets))
    assert [b.decisions for b in back] == [d.decisions for d in dets]
    # a raw-score policy with a calibrator would tag other scores: refused
    with pytest.raises(ValueError, match="chosen on raw scores"):
        Predictor(ModelFactory(inputs.model), category_ids=inputs.category_ids, num_threads=1,
                  policy=inputs.policy, calibrator={"kind": "temperature", "calibrator": {}})


def test_policy_on_calibrated_scores_needs_that_calibrator(model, tmp_path):
    from cvray.calibrate.decision import DecisionPolicy, read_policy
    from cvray.calibrate.policy import ScoreCalibration, read_calibrator
    from cvray.config import load_config
    from cvray.predict.engine import ModelFactory, Predictor, predict_local
    from cvray.predict.workflow import prepare_predict

    run_uri, data = model
    rc, out = _cli(["calibrate", "--model", run_uri, "--data", data, "--method", "temperature", "calibrate.max_images=6",
                    "calibrate.diagrams=none", "calibrate.score_thr=0.1", "--policy",
                    "act_precision=0.2,observe_recall=0.4,min_support=3,scores=calibrated", "--no-ray",
                    "--root", str(tmp_path / "runs"), "--json"])
    assert rc == 0, out
    rec = read_policy(out["run_uri"])
    assert rec["scores"] == "calibrated" and rec["calibrator"]["kind"] == "temperature"
    cal = read_calibrator(out["run_uri"])
    gt = str(Path(data, "annotations", "instances_test.json"))
    cfg = load_config(None, [f"predict.policy={out['run_uri']}", f"predict.calibrator={out['run_uri']}"])
    inputs = prepare_predict(cfg.predict, input=gt, model=run_uri)
    pred = Predictor(ModelFactory(inputs.model), category_ids=inputs.category_ids, num_threads=1,
                     policy=inputs.policy, calibrator=inputs.calibrator)
    dets, _ = predict_local(inputs.units[:4], pred, cfg.predict.geometry)
    pol, sc = DecisionPolicy(rec), ScoreCalibration(cal)
    raw, _ = predict_local(inputs.units[:4], Predictor(ModelFactory(inputs.model), category_ids=inputs.category_ids,
                                                       num_threads=1), cfg.predict.geometry)
    for d, r in zip(dets, raw):  # the decisions are on the calibrated scores written, not the raw ones
        np.testing.assert_allclose(d.scores, sc.calibrate(r.scores, r.labels), atol=1e-9)
        assert d.decisions == pol.decide(d.scores, d.labels)
    with pytest.raises(ValueError, match="chosen on calibrated scores"):
        Predictor(ModelFactory(inputs.model), category_ids=inputs.category_ids, num_threads=1, policy=inputs.policy)
    with pytest.raises(ValueError, match="use the calibrator of"):
        Predictor(ModelFactory(inputs.model), category_ids=inputs.category_ids, num_threads=1, policy=inputs.policy,
                  calibrator={**cal, "calibrator": {**cal["calibrator"], "temperature": 9.0}})


def test_cvray_predict_writes_the_decision_column(model, calibrated, ray_session, tmp_path):
    """``cvray predict ... predict.policy=RUN`` (Ray Data): the predictions table's ``decision``
    column, one per detection, as the policy decides on the written scores."""
    from cvray.calibrate.decision import DecisionPolicy, read_policy

    run_uri, data = model
    gt = str(Path(data, "annotations", "instances_test.json"))
    rc, pred = _cli(["predict", "--model", run_uri, "--input", gt, f"predict.policy={calibrated['run_uri']}",
                     "predict.num_actors=1", "--root", str(tmp_path / "runs"), "--json"])
    assert rc == 0, pred
    pol = DecisionPolicy(read_policy(calibrated["run_uri"]))
    rows = _table(pred["run_uri"], "predictions")
    assert len(rows) == 12 and sum(len(r["scores"]) for r in rows) > 0
    for r in rows:
        assert r["decision"] == pol.decide(r["scores"], r["labels"])
    t = storage.read_table_dir(storage.join(pred["run_uri"], "tables", "predictions"))
    assert t.schema.metadata[b"cvray.schema_version"] == b"2"


def test_policy_refusals(model, tmp_path, capsys):
    run_uri, data = model
    root = str(tmp_path / "runs")
    for extra, message in ((["--policy", "precision=0.9"], "KEY=VALUE"),
                           (["--policy", "act_precision=0.9"], "both act_precision and observe_recall"),
                           (["--policy", "act_precision=1.5,observe_recall=0.5"], "act_precision")):
        assert main(["calibrate", "--model", run_uri, "--data", data, *extra, "--no-ray", "--root", root]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert message in err and "Traceback" not in err, (extra, err)
    assert main(["predict", "--model", run_uri, "--input", data, "predict.policy=/nonexistent", "--root", root]) == 2
    err = capsys.readouterr().err.strip()
    assert "predict.policy" in err and "no decision policy" in err and len(err.splitlines()) == 1, err
    assert not Path(root).exists() or not list_runs(root)
