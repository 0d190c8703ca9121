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
