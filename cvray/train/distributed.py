"""Ray Train adapter: the same worker code (:func:`cvray.train.worker.run_worker`) on N workers.

* ``TorchTrainer`` with ``ScalingConfig(num_workers, use_gpu)``; GPUs are used when the cluster
  has them unless ``train.use_gpu`` says otherwise.
* DDP through ``ray.train.torch.prepare_model`` (once: Detectron2 models are never also wrapped
  by Detectron2's ``create_ddp_model``).
* Each worker reads its shard of the training split from Ray Data
  (``ray.train.get_dataset_shard("train")``, split equally so DDP workers take equal steps);
  images are decoded in the worker, so no extra CPUs are needed for Ray Data tasks.
* Fault tolerance: ``FailureConfig(max_failures)``. After each ``latest.pt`` write the workers
  report a Ray checkpoint that points at it; a restarted worker group gets it back through
  ``ray.train.get_checkpoint()`` and continues from that iteration.
* ``RunConfig(storage_path=<run>/ray)``: Ray's own state lives inside the run folder, on the
  same filesystem (local or S3) as everything else.
* Progress: ``fit()`` blocks the driver while the loop runs in the workers, so with an
  ``on_progress`` callback the main worker writes ``<run>/progress.json`` (at most every 2 s)
  and a driver thread polls it (:mod:`cvray.train.progress`) until ``fit()`` returns.

Ray Train V2 (the default in Ray >= 2.50) runs its controller with ``num_cpus=0``, so N workers
with one CPU each fit exactly on N CPUs.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from typing import Any, Callable

from cvray.io import storage
from cvray.train.data import rows_to_records
from cvray.train.worker import TrainJob, WorkerEnv, run_worker, worker_seed

__all__ = ["train_with_ray"]

log = logging.getLogger(__name__)

POINTER = "cvray_checkpoint.json"
STOPPED = "train_stopped.json"  # the workers' stop reason (a diverged loss), read by the driver
SHUFFLE_BUFFER = 64  # rows (records, not decoded images) held for the per-epoch local shuffle


def _report_checkpoint(state, name: str, uri: str) -> None:
    """Every worker reports; rank 0 attaches a Ray checkpoint pointing at ``latest.pt``."""
    import ray.train

    if name != "latest":
        return
    metrics = {"iteration": state.iteration,
               **{k: v for k, v in state.metrics.items() if isinstance(v, (int, float))}}
    if state.is_main:
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, POINTER), "w") as f:
                json.dump({"uri": uri, "iteration": state.iteration}, f)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))
    else:
        ray.train.report(metrics, checkpoint=None)


def _restore(job: TrainJob) -> dict | None:
    """The checkpoint a restarted worker group continues from (None on a first attempt).

    1. ``ray.train.get_checkpoint()``: the last checkpoint Ray registered -- a pointer to the
       run's ``latest.pt``;
    2. else the run's own ``latest.pt``, when it exists: a worker can die after rank 0 wrote and
       reported a checkpoint but before Ray's controller collected that report (seen on an idle
       2-core machine, killing a worker one step after the report). The run folder is new for a
       fresh run, so a checkpoint there can only come from an earlier attempt of this run.
    """
    import ray.train

    from cvray.train.checkpoint import CheckpointStore

    ckpt = ray.train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            with open(os.path.join(d, POINTER)) as f:
                uri = json.load(f)["uri"]
        store, name = CheckpointStore(uri.rsplit("/", 1)[0]), uri.rsplit("/", 1)[1][: -len(".pt")]
    elif job.run is not None:
        store, name = CheckpointStore.for_run(job.run.uri), "latest"
        if not store.exists(name):
            return None
    else:
        return None
    loaded = store.load(name)
    if loaded is None:
        raise FileNotFoundError(f"Ray checkpoint points at {store.path(name)}, which does not exist")
    log.info("restoring from %s (iteration %s)", store.path(name), loaded.get("iteration"))
    return loaded


def _train_fn(config: dict[str, Any]) -> None:
    """``train_loop_per_worker``: runs in every Ray Train worker process."""
    import ray.train
    import ray.train.torch

    job: TrainJob = config["job"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    shard = ray.train.get_dataset_shard("train")

    def train_records(epoch: int):
        # a new local shuffle every epoch, different on every worker, reproducible from the seed
        kw = ({"local_shuffle_buffer_size": SHUFFLE_BUFFER,
               "local_shuffle_seed": worker_seed(job.seed, rank) + epoch} if job.cfg.shuffle else {})
        for batch in shard.iter_batches(batch_size=SHUFFLE_BUFFER, batch_format="pyarrow", **kw):
            yield from rows_to_records(batch.to_pylist())

    def prepare(model):
        rcnn = job.cfg.model.arch in ("fasterrcnn", "maskrcnn")
        # R-CNN heads skip parameters on batches without positives: DDP must allow that.
        kw = {"find_unused_parameters": True} if rcnn and world > 1 else {}
        return ray.train.torch.prepare_model(model, parallel_strategy_kwargs=kw or None)

    if job.cfg.model.backend == "detectron2":
        # Detectron2 keeps process-global state that Ray's fresh worker processes lack: its local
        # process group, and its dataset catalog (for Detectron2's own evaluators / mappers).
        from cvray.models.detectron2_backend import register_coco_in_worker, setup_worker

        setup_worker(ctx.get_local_world_size())
        for split, ann in (("train", job.train_annotations), ("val", job.val_annotations)):
            if ann and not storage.is_s3(ann):  # Detectron2 reads local files only
                register_coco_in_worker(f"cvray_{split}", ann, job.images_root)
    progress = None
    if job.progress_uri and rank == 0:
        from cvray.train.progress import ProgressFile

        progress = ProgressFile(job.progress_uri)
    env = WorkerEnv(rank=rank, world_size=world, device=ray.train.torch.get_device(),
                    train_records=train_records, prepare_model=prepare,
                    initial_checkpoint=_restore(job), on_saved=_report_checkpoint, on_progress=progress)
    from cvray.train.engine import NonFiniteLossError

    try:
        summary = run_worker(job, env)
    except NonFiniteLossError as exc:
        # Not a worker failure: retrying from the checkpoint would diverge again. Leave the
        # reason in the run (Ray's result metrics do not reliably carry a report without a
        # checkpoint) and end; the driver raises it.
        if rank == 0 and job.run is not None:
            storage.write_json(job.run.path(STOPPED), {"reason": str(exc), "type": type(exc).__name__})
        ray.train.report({"stopped": str(exc)})
        return
    summary.update(worker_rank=rank)
    if rank == 0 and job.run is not None:
        storage.write_json(job.run.path("train_summary.json"), summary)
    ray.train.report({"done": True, "iteration": summary["iterations"]})


def train_with_ray(job: TrainJob, *, on_progress: Callable[..., None] | None = None,
                   callbacks: list | None = None) -> dict[str, Any]:
    """Run ``job`` on a Ray Train worker group; returns rank 0's summary.

    ``callbacks``: Ray Train callbacks for ``RunConfig`` (``cvray tune`` passes Tune's
    ``TuneReportCallback`` when a trial is a multi-worker Ray Train run).

    ``on_progress(done, total, **info)`` is called from a driver thread while ``fit()`` runs
    (from the main worker's progress file) and once more after it returns.
    """
    import ray
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from cvray.data.distributed import read_coco
    from cvray.train.engine import NonFiniteLossError

    cfg = job.cfg
    use_gpu = cfg.use_gpu if cfg.use_gpu is not None else ray.cluster_resources().get("GPU", 0) > 0
    resources = {"CPU": cfg.cpus_per_worker, **({"GPU": 1} if use_gpu else {})}
    train_ds = read_coco(job.train_annotations, job.images_root, split=cfg.train_split, decode=False)
    if cfg.shuffle:
        train_ds = train_ds.randomize_block_order(seed=job.seed)
    if job.run is None:
        raise ValueError("Ray training needs a run (checkpoints and Ray state live in it)")
    if on_progress is not None:
        job = dataclasses.replace(job, progress_uri=job.run.path("progress.json"))
    fs, path = storage.resolve(job.run.path("ray"))
    trainer = TorchTrainer(
        _train_fn,
        train_loop_config={"job": job},
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=use_gpu,
                                     resources_per_worker=resources),
        datasets={"train": train_ds},
        dataset_config=DataConfig(datasets_to_split=["train"]),
        run_config=RunConfig(
            name="train", storage_path=path, storage_filesystem=fs,
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            **({"callbacks": list(callbacks)} if callbacks else {}),
        ),
    )
    poller = None
    if on_progress is not None:
        from cvray.train.progress import ProgressPoller

        poller = ProgressPoller(job.progress_uri, on_progress).start()
    for name in (STOPPED, "train_summary.json"):  # left by an earlier attempt of this run
        storage.remove_file(job.run.path(name))
    try:
        result = _fit(trainer)
    finally:
        if poller is not None:
            poller.stop()
    stopped = (result.metrics or {}).get("stopped")
    if not stopped and storage.exists(job.run.path(STOPPED)):
        stopped = storage.read_json(job.run.path(STOPPED))["reason"]
    if stopped:
        raise NonFiniteLossError(stopped)
    if not storage.exists(job.run.path("train_summary.json")):
        raise RuntimeError(f"the Ray Train workers ended without a summary "
                           f"({getattr(result, 'error', None) or 'no error reported'}); run with -v for their logs")
    summary = storage.read_json(job.run.path("train_summary.json"))
    summary.update(workers=cfg.num_workers, use_gpu=use_gpu,
                   ray_checkpoint=result.checkpoint.path if result.checkpoint else None)
    _write_seeds(job)
    return summary


def _fit(trainer) -> Any:
    """``trainer.fit()`` in a helper thread while the main thread waits, so Ctrl-C / SIGTERM reach
    the run context's handler (the run ends ``interrupted``, exit 130/143; the last checkpoint
    stays to resume from). Called from the main thread, Ray Train would install its own SIGINT
    handler, which aborts the controller and leaves the process to exit 1 with no message."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return trainer.fit()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = trainer.fit()
        except BaseException as exc:  # re-raised in the main thread
            box["error"] = exc

    t = threading.Thread(target=target, name="cvray-ray-train-fit", daemon=True)
    t.start()
    while t.is_alive():
        t.join(0.5)  # a KeyboardInterrupt from the signal handler surfaces here
    if "error" in box:
        raise box["error"]
    return box["result"]


def _write_seeds(job: TrainJob) -> None:
    from cvray.train.outputs import worker_seeds_table

    seeds = [worker_seed(job.seed, r) for r in range(job.cfg.num_workers)]
    job.run.write_table("worker_seeds", worker_seeds_table(job.seed, seeds))
