"""``run_training``: dataset + config -> trained model, checkpoints and metrics in a run.

Reads top to bottom like torchvision's ``train.py``: data -> job -> (Ray Train | plain loop)
-> summary. ``use_ray=False`` runs the very same worker code in this process (no Ray import),
which is what unit tests and the benchmark baseline use.

Example::

    from cvray.config import load_config
    from cvray.runs import start_run
    from cvray.train import run_training

    cfg = load_config("configs/demo_maskrcnn_cpu.yaml")
    with start_run("train", config=cfg, root="./cvray-runs", seed=cfg.seed) as run:
        summary = run_training(cfg, run, "/tmp/synth/coco")
    summary["metrics"]["segm_AP"]
"""
from __future__ import annotations

import logging
import random
from typing import Any, Iterable

from cvray.data.coco import image_records, load_coco
from cvray.io import storage
from cvray.train.config import TrainConfig
from cvray.train.data import CategoryMap
from cvray.train.engine import NonFiniteLossError
from cvray.train.worker import TrainJob, WorkerEnv, run_worker

__all__ = ["NonFiniteLossError", "fit", "make_job", "run_training"]

log = logging.getLogger(__name__)


def make_job(cfg: Any, run: Any, dataset_uri: str, *, seed: int | None = None,
             extra_hooks: Iterable = ()) -> TrainJob:
    """Resolve the dataset layout (``<root>/annotations/instances_<split>.json``, ``<root>/images``)."""
    tcfg: TrainConfig = cfg.train if hasattr(cfg, "train") else cfg
    seed = seed if seed is not None else getattr(cfg, "seed", 0)
    ann = lambda split: storage.join(dataset_uri, "annotations", f"instances_{split}.json")  # noqa: E731
    train_ann = ann(tcfg.train_split)
    if not storage.exists(train_ann):
        raise FileNotFoundError(f"{dataset_uri}: no training annotations at {train_ann}")
    val_ann = ann(tcfg.val_split)
    if not storage.exists(val_ann):
        log.warning("%s: no %s split; training without validation", dataset_uri, tcfg.val_split)
        val_ann = None
    cats = CategoryMap.from_coco(load_coco(train_ann))
    if tcfg.model.num_classes is not None and tcfg.model.num_classes != cats.num_classes:
        raise ValueError(f"train.model.num_classes={tcfg.model.num_classes} but {train_ann} has "
                         f"{cats.num_classes} categories")
    return TrainJob(cfg=tcfg, seed=int(seed), run=run, images_root=storage.join(dataset_uri, "images"),
                    train_annotations=train_ann, val_annotations=val_ann, categories=cats,
                    resume=tcfg.resume, extra_hooks=tuple(extra_hooks))


def fit(job: TrainJob) -> dict[str, Any]:
    """Train in this process (rank 0 of 1), no Ray: the reference loop for tests and benchmarks."""
    recs = [(r, None) for r in image_records(load_coco(job.train_annotations))]

    def train_records(epoch: int):
        order = list(recs)
        if job.cfg.shuffle:
            random.Random(job.seed * 100003 + epoch).shuffle(order)
        return order

    steps = len(recs) // job.cfg.batch_size // job.cfg.grad_accum_steps
    return run_worker(job, WorkerEnv(train_records=train_records, steps_per_epoch=steps or None))


def run_training(cfg: Any, run: Any, dataset_uri: str, *, seed: int | None = None, use_ray: bool = True,
                 extra_hooks: Iterable = ()) -> dict[str, Any]:
    """Train per ``cfg`` (an ExperimentConfig or its ``train`` section) on the COCO dataset at
    ``dataset_uri``; results, checkpoints and curves go into ``run``. Returns the summary dict
    (``metrics`` holds the final COCO AP / mIoU) and stores it in ``run.summary``.

    Raises :class:`NonFiniteLossError` when the loss diverges (the last good checkpoint stays).
    """
    job = make_job(cfg, run, dataset_uri, seed=seed, extra_hooks=extra_hooks)
    if run is not None:
        run.update(dataset={"uri": dataset_uri, "train": job.train_annotations, "val": job.val_annotations,
                            "categories": list(job.categories.names)})
    if use_ray:
        from cvray.train.distributed import train_with_ray

        summary = train_with_ray(job)
    else:
        summary = fit(job)
        summary["workers"] = 1
    if run is not None:
        run.summary.update({k: v for k, v in summary.items() if k not in ("checkpoint_write_s",)})
    return summary
