"""What one training process does, with or without Ray: build, resume, loop, summarise.

:class:`TrainJob` is the picklable description of a training run (config, seed, run handle,
dataset URIs). :func:`run_worker` runs the named steps for one worker: :func:`build_state`
(model, optimizer, schedule, augmentation), :func:`resume` (a checkpoint when asked),
:func:`worker_hooks` (:func:`cvray.train.hooks.default_hooks`, the one place the hook order is
defined), :func:`~cvray.train.engine.train_loop`, then the issues and diagnostics tables and
:func:`summary`. The plain path (:func:`cvray.train.workflow.fit`) calls it once with rank 0;
the Ray path calls it in every Ray Train worker with that worker's Ray Data shard (see
:mod:`cvray.train.distributed`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.distributed as dist

from cvray.data.coco import image_records, load_coco
from cvray.models import build_model
from cvray.runs.issues import Issue, issues_to_table
from cvray.train.checkpoint import CheckpointStore, unwrap
from cvray.train.config import TrainConfig
from cvray.train.data import CategoryMap, Sample, samples
from cvray.train.engine import StepOptions, TrainState, train_loop
from cvray.train.evaluation import predict_partial, summarize
from cvray.train.hooks import DefaultHooks, default_hooks, restore
from cvray.train.losses import build_loss
from cvray.train.outputs import TrainOutputs
from cvray.train.schedule import build_optimizer, build_scheduler
from cvray.train.transforms import build_transforms

__all__ = ["TrainJob", "apply_optim_config", "WorkerEnv", "WorkerState", "build_state", "carry_over_history", "chunks", "resume",
           "run_worker", "summary", "worker_hooks", "worker_seed"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainJob:
    """Everything a worker needs; plain data, so Ray can ship it to every worker."""

    cfg: TrainConfig
    seed: int
    run: Any  # cvray.runs.Run (picklable) or None
    images_root: str
    train_annotations: str
    val_annotations: str | None
    categories: CategoryMap
    resume: bool = False
    extra_hooks: tuple = ()
    progress_uri: str | None = None  # Ray runs: where the main worker writes its progress file


@dataclass
class WorkerEnv:
    """How this worker is placed: rank, world size, device, and where its batches come from."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # epoch -> iterable of (record, image uri) for this worker's share of the training split
    train_records: Callable[[int], Iterable[tuple[dict, str | None]]] | None = None
    prepare_model: Callable[[torch.nn.Module], torch.nn.Module] = lambda m: m
    initial_checkpoint: dict | None = None  # e.g. from ray.train.get_checkpoint()
    on_saved: Callable | None = None
    # Known when the whole split is in this process (plain runs): lets a resumed run skip the
    # batches it already trained on, so it continues on exactly the same data.
    steps_per_epoch: int | None = None
    # on_progress(done, total, **info) on the main worker, every iteration (see ProgressHook)
    on_progress: Callable | None = None


def worker_seed(seed: int, rank: int) -> int:
    """Independent, reproducible per-worker seed (recorded in the ``worker_seeds`` table)."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def chunks(it: Iterable[Sample], size: int, drop_last: bool = True) -> Iterator[list[Sample]]:
    """Fixed-size batches. Training drops the remainder so DDP workers take equal steps;
    evaluation (``drop_last=False``) keeps it, since every image must be scored."""
    batch: list[Sample] = []
    for s in it:
        batch.append(s)
        if len(batch) == size:
            yield batch
            batch = []
    if batch and not drop_last:
        yield batch


def _records(uri: str, limit: int | None = None) -> tuple[dict, list[dict]]:
    coco = load_coco(uri)
    recs = list(image_records(coco))
    return coco, recs[:limit] if limit else recs


def _eval_fn(job: TrainJob, env: WorkerEnv) -> Callable:
    cfg = job.cfg
    task = cfg.model.task
    gt, recs = _records(job.val_annotations, cfg.max_val_images)
    mine = [(r, None) for i, r in enumerate(recs) if i % env.world_size == env.rank]

    def evaluate(state: TrainState):
        issues: list = []
        it = samples(mine, job.images_root, job.categories, task=task,
                     ignore_index=cfg.loss.ignore_index, issues=issues)
        partial = predict_partial(unwrap(state.model), chunks(it, cfg.batch_size, drop_last=False), job.categories,
                                  task=task, device=env.device, score_thresh=cfg.eval_score_thresh,
                                  ignore_index=cfg.loss.ignore_index)
        partials = [partial]
        if dist.is_available() and dist.is_initialized():
            partials = [None] * env.world_size
            dist.all_gather_object(partials, partial)
        out = [None, None]
        if state.is_main:
            out = list(summarize(partials, gt, job.categories, task=task,
                                 ignore_index=cfg.loss.ignore_index))
        if dist.is_available() and dist.is_initialized():
            dist.broadcast_object_list(out, src=0)
        return out[0], out[1]

    return evaluate


@dataclass
class WorkerState:
    """What :func:`build_state` makes for one worker: the loop's state and its ingredients."""

    state: TrainState
    seed: int  # this worker's seed (worker_seed(job.seed, rank))
    augment: Any  # the training transforms (their RNG goes into checkpoints)
    opts: StepOptions
    store: CheckpointStore | None  # None without a run


def build_state(job: TrainJob, env: WorkerEnv) -> WorkerState:
    """Model, optimizer, schedule, AMP scaler and augmentation of this worker, seeded."""
    cfg = job.cfg
    seed = worker_seed(job.seed, env.rank)
    torch.manual_seed(job.seed)  # identical initial weights on every worker (DDP also syncs them)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    mcfg = cfg.model.model_copy(update={"num_classes": job.categories.num_classes})
    loss = build_loss(cfg.loss, job.categories.num_classes + 1) if cfg.model.task == "semantic" else None
    model = build_model(mcfg, semantic_loss=loss).to(env.device)
    model = env.prepare_model(model)
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, cfg.max_iter)
    use_amp = cfg.amp and env.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    augment = build_transforms(cfg.augment, seed)
    torch.manual_seed(seed)  # from here on each worker draws its own random numbers
    state = TrainState(model, optimizer, scheduler, cfg.max_iter, scaler=scaler, rank=env.rank,
                       world_size=env.world_size, augment=augment)
    store = CheckpointStore.for_run(job.run.uri) if job.run is not None else None
    opts = StepOptions(cfg.grad_accum_steps, cfg.optim.clip_grad_norm, use_amp, env.device,
                       max_skipped_steps=cfg.optim.max_skipped_steps)
    return WorkerState(state, seed, augment, opts, store)


def resume(job: TrainJob, env: WorkerEnv, ws: WorkerState) -> bool:
    """Restore ``env.initial_checkpoint`` (Ray's) or, with ``train.resume``, the run's ``latest``;
    returns whether a checkpoint was restored."""
    store, ckpt = ws.store, env.initial_checkpoint
    if ckpt is None and job.resume and store is not None:
        ckpt = store.load("latest")
        if ckpt is None:
            raise FileNotFoundError(f"train.resume=true but {store.path('latest')} does not exist")
    if ckpt is None:
        return False
    state = ws.state
    restore(state, ckpt, rank=env.rank)
    apply_optim_config(state, job.cfg)
    state.last_checkpoint, state.last_checkpoint_iter = (store.path("latest") if store else None,
                                                         state.iteration)
    log.info("rank %d resumed at iteration %d (lr %.4g)", env.rank, state.iteration,
             state.optimizer.param_groups[0]["lr"])
    return True


def apply_optim_config(state, cfg: TrainConfig) -> None:
    """After a restore, the job's own ``optim.lr`` and ``weight_decay`` rule: a plain resume
    changes nothing (same values), a PBT-exploited Tune trial continues from the donor's weights
    and optimizer moments with its own, mutated, learning rate at the restored schedule position."""
    lr, wd = cfg.optim.lr, cfg.optim.weight_decay
    sched = state.scheduler
    if getattr(sched, "base_lrs", None) is not None:
        sched.base_lrs = [lr for _ in sched.base_lrs]
    factors = [f(sched.last_epoch) for f in getattr(sched, "lr_lambdas", [])] or [1.0]
    for i, g in enumerate(state.optimizer.param_groups):
        g["initial_lr"], g["weight_decay"] = lr, wd
        g["lr"] = lr * factors[min(i, len(factors) - 1)]


def worker_hooks(job: TrainJob, env: WorkerEnv, ws: WorkerState, outputs: TrainOutputs) -> DefaultHooks:
    """This worker's :func:`~cvray.train.hooks.default_hooks` from the job's config."""
    cfg = job.cfg
    return default_hooks(metric=cfg.metric_name, log_period=cfg.log_period, writer=outputs,
                         eval_fn=_eval_fn(job, env) if job.val_annotations else None,
                         eval_period=cfg.eval_period, store=ws.store,
                         checkpoint_period=cfg.checkpoint_period, on_saved=env.on_saved,
                         on_progress=env.on_progress)


def carry_over_history(job: TrainJob, hooks: DefaultHooks, iteration: int) -> None:
    """A resumed run keeps its curves: rows up to the checkpoint's iteration carry over (main)."""
    hooks.metrics.rows = _prior_rows(job.run, "train_curves", iteration)
    if hooks.eval is not None:
        hooks.eval.history = _prior_rows(job.run, "eval_metrics", iteration)


def run_worker(job: TrainJob, env: WorkerEnv) -> dict[str, Any]:
    """Train on this worker; returns the summary (meaningful on rank 0)."""
    ws = build_state(job, env)
    resumed = resume(job, env, ws)
    outputs = TrainOutputs(job.run if env.rank == 0 else None, tensorboard=job.cfg.tensorboard,
                           metric=job.cfg.metric_name)
    hooks = worker_hooks(job, env, ws, outputs)
    if resumed and env.rank == 0 and job.run is not None:
        carry_over_history(job, hooks, ws.state.iteration)
    issues: list[Issue] = []
    start_iter = ws.state.iteration
    epochs, start_epoch = _epochs(job, env, ws, issues)
    try:
        train_loop(ws.state, epochs, ws.opts, [*hooks.ordered(), *job.extra_hooks], start_epoch=start_epoch)
    finally:
        outputs.close()
        if job.run is not None and issues:
            # each worker writes its own part: a retried worker replaces it, never duplicates it
            job.run.write_table("issues", issues_to_table(_dedupe(issues)), part=f"train-rank{env.rank}")
    history = hooks.eval.history if hooks.eval is not None else []
    if env.rank == 0 and job.run is not None:
        _write_diagnostics(job, hooks.metrics.rows, history, job.cfg.metric_name)
    return summary(job, ws, hooks, start_iter, issues)


def _epochs(job: TrainJob, env: WorkerEnv, ws: WorkerState,
            issues: list) -> tuple[Callable[[int], Iterable[list[Sample]]], int]:
    """``epochs(e)`` -> epoch ``e``'s batches, and the epoch to start at. A resumed plain run
    (``env.steps_per_epoch`` known) skips the samples it already trained on."""
    cfg = job.cfg
    start_epoch, skip = 0, 0
    if env.steps_per_epoch:
        start_epoch, done = divmod(ws.state.iteration, env.steps_per_epoch)
        skip = done * cfg.grad_accum_steps * cfg.batch_size  # samples already trained on

    def epochs(e: int) -> Iterable[list[Sample]]:
        recs = env.train_records(e)
        if e == start_epoch and skip:
            recs = list(recs)[skip:]
        return chunks(samples(recs, job.images_root, job.categories, task=cfg.model.task,
                              ignore_index=cfg.loss.ignore_index, transform=ws.augment, issues=issues),
                      cfg.batch_size)

    return epochs, start_epoch


def summary(job: TrainJob, ws: WorkerState, hooks: DefaultHooks, start_iter: int,
            issues: list) -> dict[str, Any]:
    """The worker's summary (what ``run_train`` returns and the CLI prints)."""
    state, store, rows = ws.state, ws.store, hooks.metrics.rows
    ckpt_hook = hooks.checkpoint
    return {
        "task": job.cfg.model.task,
        "iterations": state.iteration,
        "start_iteration": start_iter,
        "final_lr": state.optimizer.param_groups[0]["lr"],
        "loss_first": rows[0]["loss"] if rows else None,
        "loss_last": rows[-1]["loss"] if rows else None,
        "metrics": dict(state.metrics),
        "best_metric_name": job.cfg.metric_name,
        "best_metric": state.best_metric,
        "checkpoint": store.path("latest") if store else None,
        "best_checkpoint": store.path("best") if store and state.best_metric is not None else None,
        "checkpoint_write_s": list(ckpt_hook.write_times) if ckpt_hook else [],
        "worker_seed": ws.seed,
        "skipped_images": len({i.image_id for i in issues}),
        **hooks.timing.summary(),
    }


def _write_diagnostics(job: TrainJob, rows: list[dict], history: list[dict], metric: str) -> None:
    """Learning-diagnostics warnings (loss flat, no positives, anchors vs boxes, AP 0) as issue rows."""
    from cvray.train.diagnostics import learning_issues, scaled_box_sizes

    cfg, d = job.cfg, job.cfg.diagnostics
    box_wh = sizes = None
    if cfg.model.backend == "torchvision" and cfg.model.arch in ("fasterrcnn", "maskrcnn", "retinanet"):
        from cvray.models.torchvision_backend import DEFAULT_ANCHORS

        sizes = list(cfg.model.anchor_sizes or DEFAULT_ANCHORS)
        box_wh = scaled_box_sizes(image_records(load_coco(job.train_annotations)), cfg.model.min_size,
                                  cfg.model.max_size)
    found = learning_issues(rows, history, warmup_iters=cfg.optim.warmup_iters, min_loss_drop=d.min_loss_drop,
                            window=d.window, metric=metric, box_wh=box_wh, anchor_sizes=sizes,
                            anchor_iou=d.anchor_iou, max_mismatch=d.max_anchor_mismatch)
    for i in found:
        log.warning("%s: %s", i.rule, i.message)
    if found:
        job.run.write_table("issues", issues_to_table(found), part="train-diagnostics")


def _prior_rows(run, table: str, upto: int) -> list[dict]:
    try:
        rows = run.read_table(table).to_pylist()
    except Exception:  # nothing written before the stop (StorageError / missing folder)
        return []
    return [r for r in rows if r["iteration"] <= upto]


def _dedupe(issues: list[Issue]) -> list[Issue]:
    seen, out = set(), []
    for i in issues:
        key = (i.rule, i.image_id, i.annotation_id)
        if key not in seen:
            seen.add(key)
            out.append(i)
    return out
