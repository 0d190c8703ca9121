"""Ray Tune adapter: trials are ``cvray train`` runs inside Tune trials (the only Ray module of
the tune stage).

Which trainable, when (``docs/tune.md``):

* ``tune.trial_workers == 1`` (default): a **function trainable that trains in its own process**
  (:func:`cvray.tune.trial.run_trial`: the same worker code and hooks as ``cvray train
  --no-ray``) and calls ``ray.tune.report(metrics, checkpoint=...)`` at every evaluation. Tune
  sees every checkpoint, so ASHA/HyperBand can pause and resume trials and PBT's exploitation
  restores the donor's checkpoint (weights, optimizer, schedule position) into the exploiting
  trial. One CPU (or a fraction of a GPU) per trial.
* ``tune.trial_workers > 1``: the function trainable is a small driver that runs
  ``TorchTrainer.fit()`` (:func:`cvray.train.distributed.train_with_ray`, Ray Train V2) with
  ``TuneReportCallback``: the workers' reports at every evaluation reach Tune as results; the
  checkpoints stay Ray Train's (in the trial's run), so PBT is refused in this mode.

Time: schedulers use the trial's own ``iteration`` (``time_attr="iteration"``), never Tune's
``training_iteration``, so a resumed or exploited trial keeps its place on the rungs.

Budget and resume: the experiment's state lives in ``<run>/ray/tune`` (local or S3, through
cvray's storage filesystem); :class:`BudgetStopper` keeps the elapsed wall time of the search in
``<run>/tune_state.json`` across resumes, so ``time_budget_s`` is the budget of the whole search.
SIGINT and SIGTERM (``ray job stop``) during the search become Tune's graceful stop (SIGUSR1):
trials are stopped, the experiment state is written one last time, and the run ends
``interrupted``; ``cvray tune --resume RUN`` continues it.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ray import tune

from cvray.io import storage
from cvray.tune.config import ParamSpec, TuneConfig
from cvray.tune.space import resolve_train

__all__ = ["BudgetStopper", "TrialSpec", "tune_with_ray"]

log = logging.getLogger(__name__)

EXPERIMENT = "tune"
CKPT_FILE = "model.pt"
META_FILE = "trial.json"
STATE_FILE = "tune_state.json"
DRIVER_CPU = 0.01  # a multi-worker trial's own actor (Tune refuses 0); Ray Train's workers ask for theirs

# driver-side progress callbacks by run id: Tune pickles its callbacks into the experiment state,
# so the callback holds only this key and finds the function in the process that runs it
_PROGRESS: dict[str, Callable[..., None]] = {}


@dataclass(frozen=True)
class TrialSpec:
    """What every trial needs (plain data: Tune ships it to the trial processes)."""

    base_train: dict[str, Any]  # the config's train section (JSON)
    dataset: str
    trials_uri: str  # <tune run>/trials: one cvray run per trial below it
    seed: int
    max_iter: int
    trial_workers: int
    metric: str


def domain(spec: ParamSpec):
    """A Tune search domain from a :class:`ParamSpec`."""
    if spec.type == "loguniform":
        return tune.loguniform(spec.low, spec.high)
    if spec.type == "uniform":
        return tune.uniform(spec.low, spec.high)
    if spec.type == "randint":
        return tune.randint(int(spec.low), int(spec.high))
    return tune.choice(list(spec.values))


def _trial_run(spec: TrialSpec, trial_id: str, section: Any):
    from cvray.runs.run import start_run

    return start_run("tune-trial", config={"train": section.model_dump(mode="json")},
                     root=spec.trials_uri, seed=spec.seed, run_id=trial_id, argv=[])


def _trainable(config: dict[str, Any], spec: TrialSpec) -> None:
    """One trial (runs in its own Ray actor process: nothing is shared between trials)."""
    import torch

    ctx = tune.get_context()
    trial_id = ctx.get_trial_id()
    section = resolve_train(spec.base_train, config, max_iter=spec.max_iter)
    if spec.trial_workers > 1:
        return _ray_train_trial(spec, trial_id, section)
    from cvray.tune.trial import run_trial, weights_sha

    if _report_finished(spec, trial_id, section):
        return
    initial, origin = None, {}
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            initial = torch.load(os.path.join(d, CKPT_FILE), map_location="cpu", weights_only=True)
            with open(os.path.join(d, META_FILE)) as f:
                origin = json.load(f)
    extra = {"trial_id": trial_id,
             "restored_from": origin.get("trial_id", ""),
             "restored_iteration": int(origin.get("iteration", -1)),
             "restored_sha": weights_sha(initial["model"]) if initial is not None else ""}

    def report(metrics: dict[str, Any], ckpt_uri: str | None) -> None:
        metrics = {**metrics, "reported_at": time.time()}  # Tune's own timestamp is whole seconds
        if ckpt_uri is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as d:
            _link_or_copy(ckpt_uri, os.path.join(d, CKPT_FILE))
            with open(os.path.join(d, META_FILE), "w") as f:
                json.dump({"trial_id": trial_id, "iteration": metrics["iteration"],
                           "weights_sha": metrics.get("weights_sha", "")}, f)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    with _trial_run(spec, trial_id, section) as run:
        run.summary.update(run_trial(section, spec.dataset, run=run, seed=spec.seed, report=report,
                                     initial_checkpoint=initial, extra=extra))


def _link_or_copy(uri: str, path: str) -> None:
    """The checkpoint the hooks just wrote, into the folder Tune will persist: a hard link when it
    is a local file on the same device (no second write of the model), else a copy."""
    if not storage.is_s3(uri):
        try:
            os.link(storage.resolve(uri)[1], path)
            return
        except OSError:  # another device, or links not allowed
            pass
    with open(path, "wb") as f:
        f.write(storage.read_bytes(uri))


def _report_finished(spec: TrialSpec, trial_id: str, section: Any) -> bool:
    """A trial whose run already finished (its manifest says succeeded at its last iteration) is
    not trained again: its last evaluation is reported once more and the trial ends. Tune's
    experiment state can be up to a few seconds older than the trials (a driver killed with
    SIGKILL), so it may still think such a trial is running."""
    run_uri = storage.join(spec.trials_uri, trial_id)
    manifest = storage.join(run_uri, "manifest.json")
    if not storage.exists(manifest):
        return False
    m = storage.read_json(manifest)
    it = (m.get("summary") or {}).get("iterations")
    same = (m.get("config") or {}).get("train") == section.model_dump(mode="json")
    if m.get("status") != "succeeded" or not isinstance(it, int) or it < section.max_iter or not same:
        return False
    try:
        last = max(storage.read_table_dir(storage.join(run_uri, "tables", "eval_metrics")).to_pylist(),
                   key=lambda r: r["iteration"])
    except Exception:  # no evaluations to report: train it again
        return False
    metrics = {k: float(v) for k, v in last.items() if isinstance(v, (int, float)) and k != "iteration"}
    metrics.update(iteration=int(last["iteration"]), evaluation=int(last["iteration"]) // max(section.eval_period, 1),
                   trial_id=trial_id, restored_from=trial_id, restored_iteration=int(last["iteration"]),
                   restored_sha="", weights_sha="", already_finished=1, reported_at=time.time())
    log.info("trial %s had finished (iteration %d): reporting its last evaluation again", trial_id, it)
    tune.report(metrics)
    return True


def _ray_train_trial(spec: TrialSpec, trial_id: str, section: Any) -> None:
    """A multi-worker trial: Ray Train V2 inside the trial, its reports forwarded to Tune."""
    from ray.tune.integration.ray_train import TuneReportCallback

    from cvray.train.distributed import train_with_ray
    from cvray.train.workflow import TrainInputs, make_job

    section = section.model_copy(update={"num_workers": spec.trial_workers,
                                         "checkpoint_period": section.eval_period, "tensorboard": False})
    class ForwardEvaluations(TuneReportCallback):
        """Only the workers' reports that carry an evaluation reach Tune (the last report of a
        run, ``{"done": True}``, has no metric for the scheduler)."""

        def after_report(self, run_context, metrics, checkpoint):
            if metrics and spec.metric in metrics[0]:
                metrics = [{**metrics[0], "trial_id": trial_id}, *metrics[1:]]
                super().after_report(run_context, metrics, checkpoint)

    with _trial_run(spec, trial_id, section) as run:
        job = make_job(run, section, TrainInputs(spec.dataset, seed=spec.seed))
        run.summary.update(train_with_ray(job, callbacks=[ForwardEvaluations()]))


class BudgetStopper(tune.Stopper):
    """Stops the search when the wall time summed over this and earlier sessions of the same run
    reaches ``budget_s`` (None: never); keeps the sum in ``state_uri`` (``tune_state.json``)."""

    def __init__(self, state_uri: str, budget_s: float | None):
        self.state_uri, self.budget_s = state_uri, budget_s
        self._t0: float | None = None
        self._prior = 0.0
        self._saved_at = 0.0

    def __getstate__(self):  # the session's clock is not part of the experiment state
        return {"state_uri": self.state_uri, "budget_s": self.budget_s}

    def __setstate__(self, d):
        self.__init__(d["state_uri"], d["budget_s"])

    def _state(self) -> dict[str, Any]:
        return storage.read_json(self.state_uri) if storage.exists(self.state_uri) else {}

    def elapsed(self) -> float:
        now = time.monotonic()
        if self._t0 is None:
            self._t0, self._prior = now, float(self._state().get("elapsed_s", 0.0))
        return self._prior + now - self._t0

    def save(self, exhausted: bool = False) -> float:
        e = self.elapsed()
        state = {**self._state(), "elapsed_s": round(e, 3), "budget_s": self.budget_s}
        if exhausted:
            state["budget_exhausted"] = True
        storage.write_json(self.state_uri, state)
        self._saved_at = time.monotonic()
        return e

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        e = self.elapsed()
        if self.budget_s is not None and e >= self.budget_s:
            self.save(exhausted=True)
            return True
        if time.monotonic() - self._saved_at > 5.0:
            self.save()
        return False


class _Progress(tune.Callback):
    """Trials running / pending / done and the best metric so far, to the run's progress function."""

    def __init__(self, key: str, total: int, metric: str, mode: str):
        self.key, self.total, self.metric, self.mode = key, total, metric, mode
        self.best: float | None = None

    def _emit(self, trials) -> None:
        fn = _PROGRESS.get(self.key)
        if fn is None:
            return
        status = [t.status for t in trials]
        done = sum(s in ("TERMINATED", "ERROR") for s in status)
        fn(done, self.total, running=status.count("RUNNING"), pending=status.count("PENDING"),
           errored=status.count("ERROR"), **({f"best_{self.metric}": self.best} if self.best is not None else {}))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        v = result.get(self.metric)
        if isinstance(v, (int, float)) and v == v:
            if self.best is None or (v > self.best if self.mode == "max" else v < self.best):
                self.best = float(v)
        self._emit(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._emit(trials)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._emit(trials)


def _pbt_class():
    from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler

    class FinalReportPBT(PopulationBasedTraining):
        """Ray's PBT that never exploits (nor checkpoints for exploiting) on a trial's final report
        (``iteration >= max_iter``). Ray would otherwise restart a finished trial from a donor's
        weights with nothing left to train, so its last result became a copy of the donor's; and a
        donor's final checkpoint, handed to a trial exploited earlier, left it nothing to train
        either. The final score still counts in the quantiles."""

        def __init__(self, max_iter: int, **kwargs) -> None:
            super().__init__(**kwargs)
            self._final_time = max_iter

        def on_trial_result(self, tune_controller, trial, result):
            t = result.get(self._time_attr)
            if t is not None and t >= self._final_time and self._metric in result and trial in self._trial_state:
                self._save_trial_state(self._trial_state[trial], t, result, trial)
                return TrialScheduler.CONTINUE
            return super().on_trial_result(tune_controller, trial, result)

    return FinalReportPBT


def _PBT(max_iter: int, **kwargs):
    return _pbt_class()(max_iter, **kwargs)


def _scheduler(section: TuneConfig, metric: str, max_iter: int, grace: int, period: int):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler

    if section.scheduler == "asha":
        return ASHAScheduler(time_attr="iteration", max_t=max_iter, grace_period=grace,
                             reduction_factor=section.reduction_factor, brackets=section.brackets)
    if section.scheduler == "hyperband":
        # HyperBand's time is the trial's own evaluation counter: its largest bracket has
        # ~eta^s_max trials, with s_max = log_eta(max_t), which in iterations (max_t=400) means
        # 256+ trials; counted in evaluations (max_t=10) it is 8. Like ``iteration``, the counter
        # is restored with the trial's checkpoint, so a resumed trial keeps its rung.
        return HyperBandScheduler(time_attr="evaluation", max_t=-(-max_iter // period),
                                  reduction_factor=section.reduction_factor)
    if section.scheduler == "pbt":
        items = dict(section.spec_items())
        keys = [m[len("train."):] if m.startswith("train.") else m for m in (section.pbt.mutations or [])]
        keys = keys or [k for k in items if k.split(".")[0] in ("optim", "augment")] or list(items)
        return _PBT(
            max_iter, time_attr="iteration", perturbation_interval=section.pbt.perturbation_interval or period,
            hyperparam_mutations={k: domain(items[k]) for k in keys},
            quantile_fraction=section.pbt.quantile_fraction,
            resample_probability=section.pbt.resample_probability)
    return FIFOScheduler()


def _searcher(section: TuneConfig, metric: str, seed: int, max_concurrent: int | None):
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if section.search == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        o = section.optuna
        sampler = optuna.samplers.TPESampler(multivariate=o.multivariate, constant_liar=o.constant_liar,
                                             n_startup_trials=o.n_startup_trials, seed=seed)
        searcher = OptunaSearch(metric=metric, mode=section.mode, sampler=sampler)
        return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent) if max_concurrent else searcher
    return BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent or 0)


def _resources(section: TuneConfig):
    if section.trial_workers > 1:  # the trial is Ray Train's driver; its workers ask for their own
        return {"CPU": DRIVER_CPU}
    return {"CPU": section.trial_cpus, **({"GPU": section.trial_gpus} if section.trial_gpus else {})}


def default_concurrency(section: TuneConfig, train_cpus: float) -> int | None:
    """``max_concurrent_trials`` when unset: every trial that fits on the cluster's CPUs."""
    import ray

    if section.max_concurrent_trials:
        return section.max_concurrent_trials
    cpus = ray.cluster_resources().get("CPU", 1)
    if section.trial_workers == 1:
        return max(1, int(cpus // section.trial_cpus))
    return max(1, int((cpus - DRIVER_CPU) // (section.trial_workers * train_cpus)))


class _GracefulStop:
    """During ``Tuner.fit``: SIGINT / SIGTERM set :attr:`signal` and send SIGUSR1, which Tune turns
    into a graceful stop (trials stopped, experiment state written); outside, the run context's
    handlers apply again."""

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.signal is None:
            self.signal = signum
            log.warning("%s: stopping the search after the experiment state is saved; resume with "
                        "cvray tune --resume RUN", signal.Signals(signum).name)
            os.kill(os.getpid(), signal.SIGUSR1)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours forwards it as SIGUSR1
            self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, h in self._previous.items():
            signal.signal(s, h)
        return False


def experiment_path(run) -> str:
    return storage.join(run.path("ray"), EXPERIMENT)


def tune_with_ray(run, section: TuneConfig, spec: TrialSpec, *, metric: str, grace: int, period: int,
                  resume: bool = False, on_progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) the search; returns the raw per-trial results:
    ``{"trials": [...], "interrupted": signal or None, "elapsed_s": ..., "budget_exhausted": ...}``."""
    import ray
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, Tuner
    from ray.tune import TuneConfig as RayTuneConfig

    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")  # experiment state at most 5 s old
    if not logging.getLogger("cvray").isEnabledFor(logging.INFO):
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own console output only with -v
    fs, root = storage.resolve(run.path("ray"))
    exp = storage.join(run.path("ray"), EXPERIMENT)
    _, exp_path = storage.resolve(exp)
    trainable = tune.with_resources(tune.with_parameters(_trainable, spec=spec), _resources(section))
    # HyperBand: every trial created up front (see TuneConfig), the resources bound concurrency
    max_concurrent = None if section.scheduler == "hyperband" else \
        default_concurrency(section, float(spec.base_train.get("cpus_per_worker", 1.0)))
    stopper = BudgetStopper(run.path(STATE_FILE), section.time_budget_s)
    if on_progress is not None:
        _PROGRESS[run.id] = on_progress
    restoring = resume and Tuner.can_restore(exp_path, storage_filesystem=fs)
    if resume and not restoring:
        log.warning("%s: no experiment state to resume; starting the search", exp)
    if restoring:
        tuner = Tuner.restore(exp_path, trainable, resume_unfinished=True,
                              resume_errored=section.retry_errored, storage_filesystem=fs)
    else:
        space = {k: domain(v) for k, v in section.spec_items()}  # PBT: the first values, then mutations
        tuner = Tuner(
            trainable,
            param_space=space,
            tune_config=RayTuneConfig(
                metric=metric, mode=section.mode, num_samples=section.num_samples,
                scheduler=_scheduler(section, metric, spec.max_iter, grace, period),
                # the searcher limits concurrency itself (BasicVariantGenerator's max_concurrent,
                # Optuna inside a ConcurrencyLimiter): Tune ignores max_concurrent_trials for them
                search_alg=_searcher(section, metric, spec.seed, max_concurrent), reuse_actors=False),
            run_config=RunConfig(
                name=EXPERIMENT, storage_path=root, storage_filesystem=fs, stop=stopper, verbose=0,
                # PBT clones a donor's latest checkpoint while the donor trains on: keep them all
                checkpoint_config=CheckpointConfig(num_to_keep=None if section.scheduler == "pbt"
                                                   else section.keep_checkpoints,
                                                   checkpoint_score_attribute=metric,
                                                   checkpoint_score_order=section.mode),
                failure_config=FailureConfig(max_failures=section.max_failures),
                callbacks=[_Progress(run.id, section.num_samples, metric, section.mode)]),
        )
    stopper.elapsed()  # the session's clock starts here
    import contextlib
    import sys

    try:  # Tune prints its tables (errored trials ...) on stdout: keep stdout for cvray's --json
        with _GracefulStop() as stop, contextlib.redirect_stdout(sys.stderr):
            grid = tuner.fit()
    finally:
        _PROGRESS.pop(run.id, None)
    state = storage.read_json(run.path(STATE_FILE)) if storage.exists(run.path(STATE_FILE)) else {}
    exhausted = bool(state.get("budget_exhausted"))
    elapsed = BudgetStopper(run.path(STATE_FILE), section.time_budget_s).save(exhausted=exhausted)
    return {"trials": _collect(grid, metric, section.mode), "interrupted": stop.signal,
            "elapsed_s": elapsed, "budget_exhausted": exhausted}


def _collect(grid, metric: str, mode: str) -> list[dict[str, Any]]:
    """Per trial: id, config, Tune status, error, every reported row, best checkpoint path.
    (ResultGrid keeps its results in the order of the experiment's Trial objects, which carry
    the id and Tune's status.)"""
    out = []
    for trial, r in zip(grid._experiment_analysis.trials, grid):
        df = r.metrics_dataframe
        rows = df.to_dict("records") if df is not None and len(df) else []
        best_ckpt = None
        scored = [(c, m) for c, m in (r.best_checkpoints or []) if isinstance(m.get(metric), (int, float))]
        if scored:
            pick = max if mode == "max" else min
            best_ckpt = pick(scored, key=lambda cm: cm[1][metric])[0].path
        out.append({"trial_id": trial.trial_id, "config": dict(trial.config or {}), "status": trial.status,
                    "error": str(r.error).strip().splitlines()[-1][:500] if r.error else None, "rows": rows,
                    "checkpoint": best_ckpt, "path": r.path})
    return out
