"""The search space as data (no Ray): validation names the bad key, trials resolve exactly."""
from __future__ import annotations

import pytest

from cvray.config import load_config
from cvray.runs.errors import InputError
from cvray.train.config import TrainConfig
from cvray.tune.config import TuneConfig
from cvray.tune.outputs import asha_milestones, best_config, classify
from cvray.tune.space import resolve_train, validate_space

BASE = TrainConfig().model_dump(mode="json")


def _space(**space) -> TuneConfig:
    return TuneConfig.model_validate({"space": space})


def test_both_shipped_spaces_validate():
    for path in ("configs/tune/demo.yaml", "configs/tune/maskrcnn_gpu.yaml"):
        cfg = load_config(path)
        validate_space(cfg.tune, cfg.train.model_dump(mode="json"))


@pytest.mark.parametrize("key, spec, words", [
    ("optim.lrr", {"type": "loguniform", "low": 1e-4, "high": 1e-2}, ["optim.lrr", "'lrr'", "lr"]),
    ("optimizer.lr", {"type": "uniform", "low": 0.1, "high": 0.2}, ["optimizer.lr", "'optimizer'"]),
    ("max_iter.x", {"type": "choice", "values": [1]}, ["max_iter.x", "a value, not a section"]),
    ("optim", {"type": "choice", "values": [1]}, ["optim", "rejected"]),
    ("augment.hflip_prob", {"type": "uniform", "low": 0.5, "high": 1.5}, ["augment.hflip_prob", "1.5"]),
    ("batch_size", {"type": "choice", "values": [2, 0]}, ["batch_size", "0"]),
    ("optim.optimizer", {"type": "choice", "values": ["sgd", "lion"]}, ["optim.optimizer", "lion"]),
    ("resume", {"type": "choice", "values": [True]}, ["resume", "not searchable"]),
    ("train.num_workers", {"type": "choice", "values": [1, 2]}, ["num_workers", "not searchable"]),
])
def test_bad_space_names_the_key(key, spec, words):
    with pytest.raises(InputError) as e:
        validate_space(_space(**{key: spec}), BASE)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_spec_shapes_are_checked():
    for bad in ({"type": "loguniform", "low": 0, "high": 1}, {"type": "uniform", "low": 2, "high": 1},
                {"type": "choice", "values": []}, {"type": "choice", "low": 1, "high": 2},
                {"type": "randint", "low": 0.5, "high": 3}, {"type": "normal", "low": 0, "high": 1}):
        with pytest.raises(ValueError):
            _space(x=bad)
    with pytest.raises(InputError, match="empty"):
        validate_space(TuneConfig(), BASE)


def test_resolve_sets_exactly_the_sampled_keys():
    got = resolve_train(BASE, {"optim.lr": 0.0123, "train.augment.scale_range": [0.8, 1.2],
                               "batch_size": 4}, max_iter=77)
    assert got.optim.lr == 0.0123 and got.augment.scale_range == (0.8, 1.2) and got.batch_size == 4
    assert got.max_iter == 77
    rest = got.model_dump(mode="json")
    for k in ("optim", "augment"):
        rest[k] = {kk: vv for kk, vv in rest[k].items() if kk not in ("lr", "scale_range")}
    want = TrainConfig().model_dump(mode="json")
    for k in ("optim", "augment"):
        want[k] = {kk: vv for kk, vv in want[k].items() if kk not in ("lr", "scale_range")}
    rest.pop("max_iter"), want.pop("max_iter"), rest.pop("batch_size"), want.pop("batch_size")
    assert rest == want


def test_asha_milestones_match_tune():
    from ray.tune.schedulers.async_hyperband import _Bracket

    for grace, rf, max_t in ((10, 2, 40), (50, 2, 200), (5, 3, 90), (1000, 4, 90000)):
        b = _Bracket(min_t=grace, max_t=max_t, reduction_factor=rf, s=0)
        assert sorted(m for m, _ in b._rungs) == asha_milestones(grace, rf, max_t)


def test_classify_statuses():
    rows = lambda *its: [{"iteration": i, "m": 0.1} for i in its]  # noqa: E731
    kw = dict(max_iter=40, scheduler="asha", milestones=[10, 20, 40], interrupted=False, budget_exhausted=False)
    assert classify({"rows": rows(10, 20, 30, 40), "status": "TERMINATED"}, **kw)[0] == "completed"
    assert classify({"rows": rows(10, 20, 30), "status": "TERMINATED"}, **kw)[::2] == ("early_stopped", 20)
    assert classify({"rows": rows(10), "status": "ERROR", "error": "boom"}, **kw)[0] == "error"
    assert classify({"rows": rows(10), "status": "RUNNING"}, **{**kw, "interrupted": True})[0] == "interrupted"
    assert classify({"rows": rows(10), "status": "TERMINATED"}, **{**kw, "interrupted": True})[0] == "interrupted"
    assert classify({"rows": rows(10, 20, 30, 40), "status": "TERMINATED"}, **{**kw, "interrupted": True})[0] == "completed"
    assert classify({"rows": [], "status": "PENDING"}, **{**kw, "interrupted": True})[0] == "pending"
    assert classify({"rows": rows(10), "status": "TERMINATED"}, **{**kw, "budget_exhausted": True})[0] == "time_budget"


def test_best_config_drops_tune_and_redacted_secrets():
    cfg = {"name": "x", "storage": {"root": "s3://b/r", "access_key_id": "**********", "region": "eu"},
           "tune": {"num_samples": 3}, "train": {"max_iter": 5}}
    out = best_config(cfg, {"max_iter": 9, "resume": True, "run_id": "r"}, dataset="/d")
    assert "tune" not in out and out["train"] == {"max_iter": 9} and out["data"]["root"] == "/d"
    assert out["storage"] == {"root": "s3://b/r", "region": "eu"}
    load_config(None, [])  # the composed config still loads without a tune section


def test_budget_stopper_sums_sessions(tmp_path):
    import time

    from cvray.tune.distributed import BudgetStopper

    uri = str(tmp_path / "tune_state.json")
    a = BudgetStopper(uri, budget_s=0.6)
    a.elapsed()
    time.sleep(0.35)
    assert not a.stop_all()
    a.save()
    b = BudgetStopper(uri, budget_s=0.6)  # a resumed session starts from what was spent
    assert b.elapsed() >= 0.35
    time.sleep(0.3)
    assert b.stop_all()
    import json

    assert json.loads((tmp_path / "tune_state.json").read_text())["budget_exhausted"] is True
    import pickle

    c = pickle.loads(pickle.dumps(b))  # as Tune restores it from the experiment state
    assert c.stop_all()


def test_cli_refuses_a_bad_search_before_any_run(tmp_path):
    """User mistakes: one line naming the problem, exit 2, no traceback, no run folder."""
    import subprocess
    import sys

    from tests.tune_helpers import easy_dataset, tune_config

    data = easy_dataset(tmp_path / "easy")
    cfg = tune_config(tmp_path / "t.yaml", data, tune={"space": {"optim.lrr": {"type": "choice", "values": [1]}}})
    ok = tune_config(tmp_path / "ok.yaml", data, tune={"space": {"optim.lr": {"type": "choice", "values": [1e-3]}}})
    root = tmp_path / "runs"
    cases = [
        (["tune", "--config", str(cfg)], "tune.space.optim.lrr: train.optim has no key 'lrr'"),
        (["tune", "--config", str(cfg), "tune.space.optim.lrr.type=normal"], "tune.space.optim.lrr.type"),
        (["tune", "--config", str(cfg), "--dataset", str(tmp_path / "nope")], "no train split"),
        (["tune", "--config", str(cfg), "train.eval_period=0"], "train.eval_period=0"),
        (["tune", "--resume", "no-such-run"], "no tune run there"),
        (["tune", "--resume", "x", "tune.num_samples=3"], "drop --config, --dataset and overrides"),
        (["tune", "--resume", "../x"], "run id"),
        (["tune", "--config", str(ok), "tune.scheduler=hyperband", "tune.max_concurrent_trials=2"],
         "cannot be used with tune.scheduler=hyperband"),
    ]
    for argv, words in cases:
        p = subprocess.run([sys.executable, "-m", "cvray.cli.main", *argv, "--root", str(root)],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 2, (argv, p.stderr)
        assert words in p.stderr and "Traceback" not in p.stderr, (argv, p.stderr)
        assert len(p.stderr.strip().splitlines()) <= 2, p.stderr
    assert not root.exists() or not any(root.iterdir())


def test_schedulers_use_the_trials_own_iteration():
    from cvray.tune.distributed import _scheduler

    for name, attr in (("asha", "iteration"), ("hyperband", "evaluation"), ("pbt", "iteration")):
        section = TuneConfig.model_validate({"scheduler": name, "space": {
            "optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}})
        s = _scheduler(section, "bbox_AP", max_iter=40, grace=10, period=10)
        assert s._time_attr == attr, name  # both restored with the trial's checkpoint
    hb = _scheduler(TuneConfig.model_validate({"scheduler": "hyperband"}), "bbox_AP", max_iter=45, grace=10,
                    period=10)
    assert hb._max_t_attr == 5  # evaluations at 10, 20, 30, 40 and the last at 45


def test_space_overrides_land_on_the_yaml_entry(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("tune:\n  space:\n    optim.lr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}\n"
                 "    augment: {hflip_prob: {type: uniform, low: 0, high: 0.5}}\n")
    cfg = load_config(p, ["tune.space.optim.lr.high=0.05", "tune.space.batch_size.type=choice",
                          "tune.space.batch_size.values=[2,4]"])
    items = dict(cfg.tune.spec_items())
    assert items["optim.lr"].high == 0.05 and items["optim.lr"].low == 1e-4
    assert items["augment.hflip_prob"].high == 0.5 and items["batch_size"].values == [2, 4]
