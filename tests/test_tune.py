"""``cvray tune`` end to end on real Ray Tune and real training (CPU, the easy synthetic set).

Each search runs the CLI in its own process (its own local Ray), as a user would. Budget: trials
of at most 40 iterations of 4 images of 128 px, evaluated every 10 iterations on 12 val images.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cvray.io import storage
from tests.tune_helpers import SANE_LR, TINY_LR, easy_dataset, tune_config

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cvray.cli.main"]
PBT_SEED = 1


def _cvray(*args, timeout=600, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **(env or {})})


def _table(run_uri: str, name: str) -> list[dict]:
    return storage.read_table_dir(storage.join(run_uri, "tables", name)).to_pylist()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    return easy_dataset(tmp_path_factory.mktemp("tune-data") / "easy")


@pytest.fixture(scope="module")
def asha(dataset, tmp_path_factory):
    """6 trials, lr sane or 100x too small, ASHA with rungs at 10 / 20 / 40 iterations."""
    tmp = tmp_path_factory.mktemp("tune-asha")
    cfg = tune_config(tmp / "tune.yaml", dataset, tune={
        "scheduler": "asha", "num_samples": 6, "grace_period": 10, "reduction_factor": 2,
        "max_concurrent_trials": 2,
        "space": {"optim.lr": {"type": "choice", "values": [SANE_LR, TINY_LR]},
                  "augment.hflip_prob": {"type": "uniform", "low": 0.0, "high": 0.5}}})
    t0 = time.time()
    p = _cvray("tune", "--config", str(cfg), "--root", str(tmp / "runs"), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    out["wall_s"] = time.time() - t0
    return out


def test_asha_stops_trials_early_by_its_rule(asha):
    trials = _table(asha["run_uri"], "trials")
    curves = _table(asha["run_uri"], "trial_curves")
    assert len(trials) == 6 and len({t["trial_id"] for t in trials}) == 6
    assert all(t["tune_status"] == "TERMINATED" for t in trials), trials
    stopped = [t for t in trials if t["status"] == "early_stopped"]
    done = [t for t in trials if t["status"] == "completed"]
    assert stopped and done and len(stopped) + len(done) == 6
    assert all(t["iterations"] == 40 for t in done)
    assert all(t["iterations"] < 40 and t["stop_rung"] in (10, 20) for t in stopped)
    assert asha["iterations_trained"] < asha["iterations_full_budget"]
    # ASHA's rule replayed from the curves: at each rung, in the order trials reached it, a trial
    # is stopped exactly when its metric is below the rung's cutoff (the 1 - 1/rf quantile of the
    # metrics recorded there before it); so the best trial at a rung always survives it
    status = {t["trial_id"]: t for t in trials}
    for rung in (10, 20):
        at = sorted((r for r in curves if r["iteration"] == rung), key=lambda r: r["timestamp"])
        recorded: list[float] = []
        for r in at:
            t = status[r["trial_id"]]
            was_stopped = t["status"] == "early_stopped" and t["stop_rung"] == rung
            cutoff = np.nanpercentile(recorded, 50) if recorded else None
            if was_stopped:
                assert cutoff is not None and r["bbox_AP50"] < cutoff, (rung, r, recorded)
            else:
                assert cutoff is None or r["bbox_AP50"] >= cutoff, (rung, r, recorded)
            recorded.append(r["bbox_AP50"])
        survivors = [r["bbox_AP50"] for r in at if not (status[r["trial_id"]]["stop_rung"] == rung)]
        gone = [r["bbox_AP50"] for r in at if status[r["trial_id"]]["stop_rung"] == rung]
        if gone:
            assert max(survivors) >= max(gone)


def test_lr_search_finds_the_sane_lr(asha):
    trials = _table(asha["run_uri"], "trials")
    by_lr = {lr: [t for t in trials if t["param:optim.lr"] == lr] for lr in (SANE_LR, TINY_LR)}
    assert by_lr[SANE_LR] and by_lr[TINY_LR], "the seed's draw should hold both learning rates"
    assert asha["best"]["config"]["optim.lr"] == SANE_LR
    best_sane = max(t["best_metric"] for t in by_lr[SANE_LR])
    best_tiny = max(t["best_metric"] for t in by_lr[TINY_LR])
    assert best_sane >= best_tiny + 0.05, (best_sane, best_tiny)  # a real signal, not a tie


def test_sampled_values_reach_the_trainer(asha):
    """The failure mode where every trial trains the same config: each trial's optimizer ran at
    its own sampled lr (train_curves' lr column, read from the optimizer after warmup)."""
    trials = _table(asha["run_uri"], "trials")
    lrs = set()
    for t in trials:
        trial_run = storage.join(asha["run_uri"], "trials", t["trial_id"])
        lr_rows = [r for r in _table(trial_run, "train_curves") if r["iteration"] > 5]
        sampled = json.loads(t["sampled"])
        assert lr_rows and all(abs(r["lr"] - sampled["optim.lr"]) < 1e-12 for r in lr_rows), t["trial_id"]
        assert json.loads(t["train_config"])["augment"]["hflip_prob"] == sampled["augment.hflip_prob"]
        lrs.add(sampled["optim.lr"])
    assert len(lrs) == 2


def test_best_config_retrains_to_the_same_metric(asha, tmp_path):
    best = asha["best"]
    p = _cvray("train", "--config", best["best_config"], "--no-ray", "--root", str(tmp_path), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    again = json.loads(p.stdout)
    # same seed, same data order, same single-process loop: the same number (stated tolerance 1e-6)
    assert abs(again["bbox_AP50"] - best["bbox_AP50"]) <= 1e-6, (again["bbox_AP50"], best)
    assert storage.exists(best["checkpoint"])


def test_outputs_and_plots(asha):
    run = asha["run_uri"]
    for name in ("curves", "params", "best_so_far"):
        assert Path(asha["plots"][name]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    m = json.loads(Path(run, "manifest.json").read_text())
    assert m["status"] == "succeeded" and m["command"] == "tune"
    assert {"trials", "trial_curves"} <= set(m["tables"])
    curves = _table(run, "trial_curves")
    assert len({(r["trial_id"], r["iteration"]) for r in curves}) == len(curves)
    from cvray.report.html import build_report

    page = build_report(run)
    assert "Hyperparameter search (6 trials, asha, random)" in page and asha["best"]["trial_id"] in page
    assert page.count("data:image/png") >= 3
    # `--model RUN` on a search gives its best trial's model with the best checkpoint, loaded strictly
    from cvray.models import ModelConfig, build_model
    from cvray.predict.model_spec import resolve_model

    mcfg, source = resolve_model(run, ModelConfig(), num_classes=2)
    assert source.endswith("(best.pt)") and mcfg.backbone == "small_resnet_fpn"
    build_model(mcfg)


def _wait_for(pred, timeout: float, what: str, proc=None):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the search ended (rc {proc.returncode}) before {what}: "
                                 f"{proc.stderr.read()[-3000:] if proc.stderr else ''}")
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_interrupts_then_resume_run_every_trial_once(dataset, tmp_path):
    """Ctrl-C (SIGINT) mid-search; ``--resume``; ``ray job stop`` (SIGTERM) in the resumed search;
    ``--resume``; the driver killed (SIGKILL: no graceful stop, Tune's last snapshot); ``--resume``
    to the end. Finished trials are kept and never started again, unfinished ones continue from
    their last checkpoint, and every trial ends terminated exactly once. Optuna TPE proposes the
    trials (its state is resumed too)."""
    cfg = tune_config(tmp_path / "tune.yaml", dataset, max_iter=20, tune={
        "scheduler": "fifo", "search": "optuna", "num_samples": 3, "max_concurrent_trials": 2,
        "optuna": {"n_startup_trials": 2},
        "space": {"optim.lr": {"type": "loguniform", "low": 5e-4, "high": 4e-3}}})
    root = tmp_path / "runs"

    def reports() -> int:  # every report Tune has received, all sessions together
        return sum(len(p.read_text().splitlines()) for p in root.glob("*/ray/tune/*/result.json"))

    def finished() -> dict[str, str]:  # trial id -> when the process that finished it started
        out = {}
        for p in root.glob("*/trials/*/manifest.json"):
            m = json.loads(p.read_text())  # a trial stopped by the interruption has its own status
            if m["status"] == "succeeded" and m["summary"]["iterations"] == 20:
                out[p.parent.name] = json.loads((p.parent / "_started.json").read_text())["started_at"]
        return out

    def session(argv: list[str], until, sig: int) -> tuple[int, str]:
        proc = subprocess.Popen([*CLI, *argv, "--root", str(root)], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(until, 400, getattr(until, "__doc__", None) or "the signal's moment", proc)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
        return proc.returncode, err

    rc, err = session(["tune", "--config", str(cfg)], until=lambda: reports() >= 1, sig=signal.SIGINT)
    assert rc == 130 and "Traceback" not in err, err[-3000:]
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "interrupted" and f"--resume {run_dir.name}" in m["summary"]["resume"]
    first = {t["trial_id"]: t for t in _table(str(run_dir), "trials")}
    assert any(t["status"] in ("interrupted", "pending") for t in first.values()), first

    # Under load a trial can reach its last iteration in the first session before the graceful stop
    # takes hold; the SIGTERM waits for a trial finished by the resumed session (sent at once, it
    # would reach a process that has not started Python yet, which SIGTERM kills outright: rc -15)
    before = finished()
    rc, err = session(["tune", "--resume", run_dir.name], until=lambda: len(finished()) > len(before),
                      sig=signal.SIGTERM)
    assert rc == 143 and "Traceback" not in err, err[-3000:]
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"
    done_before_kill = finished()
    assert done_before_kill, "a trial had finished before the SIGTERM"
    n = reports()

    rc, _ = session(["tune", "--resume", run_dir.name], until=lambda: reports() > n, sig=signal.SIGKILL)
    assert rc == -9

    p = _cvray("tune", "--resume", run_dir.name, "--root", str(root), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    trials = _table(str(run_dir), "trials")
    ids = [t["trial_id"] for t in trials]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert all(t["tune_status"] == "TERMINATED" and t["status"] == "completed" for t in trials), trials
    now = finished()
    for tid, started in done_before_kill.items():  # finished before the kill: not trained again
        assert now[tid] == started, tid
    curves = _table(str(run_dir), "trial_curves")
    for tid in ids:
        assert [r["iteration"] for r in curves if r["trial_id"] == tid] == [10, 20], tid
    resumed = [r for r in curves if r["restored_iteration"] >= 10 and r["restored_from"] == r["trial_id"]]
    assert resumed, "no trial continued from its own checkpoint"  # an interrupted trial went on from 10
    assert all(r["iteration"] > r["restored_iteration"] for r in resumed)
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "succeeded"


def test_multi_worker_trial_is_a_ray_train_run(dataset, tmp_path):
    """tune.trial_workers=2: the trial drives a 2-worker Ray Train run (Train V2 inside Tune) whose
    evaluations reach Tune through TuneReportCallback."""
    cfg = tune_config(tmp_path / "tune.yaml", dataset, max_iter=4, eval_period=2, batch_size=2, tune={
        "scheduler": "fifo", "num_samples": 1, "trial_workers": 2,
        "space": {"optim.lr": {"type": "choice", "values": [SANE_LR]}}})
    import yaml

    d = yaml.safe_load(cfg.read_text())
    d["train"]["cpus_per_worker"] = 0.99  # 2 workers + the trial's 0.01-CPU driver on 2 CPUs
    cfg.write_text(yaml.safe_dump(d))
    p = _cvray("tune", "--config", str(cfg), "--root", str(tmp_path / "runs"), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    (t,) = _table(out["run_uri"], "trials")
    assert t["status"] == "completed" and t["evaluations"] == 2 and t["iterations"] == 4
    trial_run = storage.join(out["run_uri"], "trials", t["trial_id"])
    assert len(_table(trial_run, "worker_seeds")) == 2  # two Ray Train workers trained it
    assert storage.exists(out["best"]["checkpoint"])


def test_pbt_exploit_continues_from_the_donors_checkpoint(dataset, tmp_path):
    """PBT: a trial in the bottom quantile takes a top trial's checkpoint. Shown from the data: the
    weights it restored hash to the donor's weights at the donor's reported iteration, and its
    curve goes on from that iteration (not from 0) with its own, mutated, learning rate."""
    cfg = tune_config(tmp_path / "tune.yaml", dataset, max_iter=40, seed=PBT_SEED, tune={
        "scheduler": "pbt", "num_samples": 2, "max_concurrent_trials": 2,
        "pbt": {"perturbation_interval": 10, "quantile_fraction": 0.5, "resample_probability": 1.0},
        "space": {"optim.lr": {"type": "choice", "values": [SANE_LR, TINY_LR]}}})
    p = _cvray("tune", "--config", str(cfg), "--root", str(tmp_path / "runs"), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    curves = _table(out["run_uri"], "trial_curves")
    trials = _table(out["run_uri"], "trials")
    exploited = [r for r in curves if r["restored_from"] and r["restored_from"] != r["trial_id"]]
    assert exploited, "PBT exploited no trial"
    assert all(t["status"] == "completed" for t in trials), trials
    for r in exploited:
        donor = [d for d in curves if d["trial_id"] == r["restored_from"] and d["iteration"] == r["restored_iteration"]]
        assert donor and donor[0]["weights_sha"] == r["restored_sha"], (r, donor)
        assert r["iteration"] > r["restored_iteration"] or r["restored_iteration"] == 40, r
    # never exploited on a final report (cvray's PBT): a trial goes on training from what it took
    assert any(r["iteration"] > r["restored_iteration"] for r in exploited), exploited
    assert any(t["restored_from"] for t in trials)
    for t in trials:  # the trial's lr after the exploitation is its own, mutated one
        trial_run = storage.join(out["run_uri"], "trials", t["trial_id"])
        final_lr = json.loads(t["sampled"])["optim.lr"]
        last = max(_table(trial_run, "train_curves"), key=lambda r: r["iteration"])
        assert abs(last["lr"] - final_lr) < 1e-12, (t["trial_id"], last["lr"], final_lr)


def test_hyperband_brackets_prune_and_resume_from_own_checkpoints(dataset, tmp_path):
    """HyperBand (Ray's synchronous one): max_t = 20 / 10 = 2 evaluations, eta 2, so a band has
    two brackets of 2 trials, filled least aggressive first. Bracket s=0: both trials run to 20.
    Bracket s=1: both run to iteration 10; the first to get there pauses until the second does;
    then the better one goes on to 20 (a paused one from its own checkpoint), the other stops.
    Unlike ASHA, the cut is made with the whole rung known."""
    cfg = tune_config(tmp_path / "tune.yaml", dataset, max_iter=20, tune={
        "scheduler": "hyperband", "num_samples": 4, "reduction_factor": 2,  # 2 CPUs: 2 at a time
        "space": {"optim.lr": {"type": "choice", "values": [SANE_LR, TINY_LR]}}})
    p = _cvray("tune", "--config", str(cfg), "--root", str(tmp_path / "runs"), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    trials = {t["trial_id"]: t for t in _table(out["run_uri"], "trials")}
    curves = _table(out["run_uri"], "trial_curves")
    ids = sorted(trials)  # Tune's trial ids count up in the order trials were added to brackets
    assert [trials[t]["iterations"] for t in ids[:2]] == [20, 20], trials  # bracket s=0: no cut
    second = sorted(trials[t]["iterations"] for t in ids[2:])
    assert second == [10, 20], trials  # bracket s=1: one cut at the rung, one goes on
    (cut,) = [t for t in ids[2:] if trials[t]["iterations"] == 10]
    (kept,) = [t for t in ids[2:] if trials[t]["iterations"] == 20]
    assert trials[cut]["status"] == "early_stopped" and trials[cut]["stop_rung"] == 10
    assert all(trials[t]["status"] == "completed" for t in (*ids[:2], kept))
    at10 = {r["trial_id"]: r["bbox_AP50"] for r in curves if r["iteration"] == 10}
    assert at10[kept] >= at10[cut], at10
    # every curve is 10, 20, ... once; a trial that was paused resumed from its own checkpoint
    for tid, t in trials.items():
        rows = sorted((r for r in curves if r["trial_id"] == tid), key=lambda r: r["iteration"])
        assert [r["iteration"] for r in rows] == list(range(10, t["iterations"] + 1, 10)), rows
        for r in rows:
            assert not r["restored_from"] or (r["restored_from"] == tid and r["restored_iteration"] == 10), r


def test_s3_storage_and_a_budget_that_survives_resume(dataset, tmp_path, s3_bucket, s3_server):
    """Experiment state, trials and the best config on S3 (moto); tune.time_budget_s stops the
    search, and a resumed search has no budget left: it trains no further."""
    root = s3_bucket + "/runs"
    # 25 s: room for a first evaluation (iteration 10) even on a loaded machine, so there is a best
    cfg = tune_config(tmp_path / "tune.yaml", dataset, max_iter=400, storage_root=root, tune={
        "scheduler": "asha", "num_samples": 4, "max_concurrent_trials": 2, "time_budget_s": 25,
        "space": {"optim.lr": {"type": "loguniform", "low": 5e-4, "high": 4e-3}}})
    env = {"AWS_ENDPOINT_URL": s3_server}
    p = _cvray("tune", "--config", str(cfg), "--json", env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    assert out["run_uri"].startswith("s3://") and out["budget_exhausted"] is True
    trials = _table(out["run_uri"], "trials")
    assert trials and all(t["iterations"] < 400 for t in trials)
    assert {t["status"] for t in trials} <= {"time_budget", "pending", "early_stopped"}
    assert storage.exists(storage.join(out["run_uri"], "best_config.yaml"))
    assert storage.list_files(storage.join(out["run_uri"], "ray", "tune"), suffix=".json")
    trained = {t["trial_id"]: t["iterations"] for t in trials}
    p = _cvray("tune", "--resume", out["run"], "--root", root, "--json", env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    again = json.loads(p.stdout)
    assert again["budget_exhausted"] is True and again["elapsed_s"] >= 25
    assert {t["trial_id"]: t["iterations"] for t in _table(out["run_uri"], "trials")} == trained


def test_an_errored_trial_is_retried_from_its_checkpoint_on_resume(dataset, tmp_path):
    """A trial whose process dies (its actor killed) ends ERROR, the search goes on and exits 1
    with the count; with ``tune.retry_errored`` the ``--resume`` continues that trial from its
    last checkpoint to the end, and the finished trial is not run again."""
    cfg = tune_config(tmp_path / "tune.yaml", dataset, max_iter=40, tune={
        "scheduler": "fifo", "num_samples": 2, "max_concurrent_trials": 2, "retry_errored": True,
        "space": {"optim.lr": {"type": "choice", "values": [SANE_LR]}}})
    root = tmp_path / "runs"
    proc = subprocess.Popen([*CLI, "tune", "--config", str(cfg), "--root", str(root), "--json"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def first_report():
            for p in sorted(root.glob("*/ray/tune/*/result.json")):
                lines = p.read_text().splitlines()
                if lines:
                    return json.loads(lines[0])
            return None

        _wait_for(lambda: first_report() is not None, 300, "a trial's first report", proc)
        victim = first_report()  # reported at iteration 10 of 40: it is mid-trial
        os.kill(int(victim["pid"]), signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and out.strip(), err[-3000:]
    s = json.loads(out)
    assert s["by_status"] == {"completed": 1, "error": 1}, s
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    before = {t["trial_id"]: t for t in _table(str(run_dir), "trials")}
    assert before[victim["trial_id"]]["status"] == "error" and before[victim["trial_id"]]["error"]
    (other,) = [t for t in before if t != victim["trial_id"]]
    other_started = json.loads((run_dir / "trials" / other / "_started.json").read_text())["started_at"]

    p = _cvray("tune", "--resume", run_dir.name, "--root", str(root), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    trials = {t["trial_id"]: t for t in _table(str(run_dir), "trials")}
    assert all(t["status"] == "completed" for t in trials.values()), trials
    rows = [r for r in _table(str(run_dir), "trial_curves") if r["trial_id"] == victim["trial_id"]]
    assert [r["iteration"] for r in rows] == [10, 20, 30, 40]
    after = [r for r in rows if r["restored_iteration"] >= 10]
    assert after and all(r["iteration"] > r["restored_iteration"] for r in after)  # from its checkpoint, not 0
    assert json.loads((run_dir / "trials" / other / "_started.json").read_text())["started_at"] == other_started
