"""``run_train``: the train stage's entry point -- a COCO dataset in, a trained model, its
checkpoints, curves and metrics in the run.

Reads top to bottom like torchvision's ``train.py``: inputs -> job -> (Ray Train | plain loop)
-> summary. ``ray=False`` runs the very same worker code in this process (no Ray import),
which is what unit tests and the benchmark baseline use.

Example::

    from cvray.config import load_config
    from cvray.runs import start_run
    from cvray.train.workflow import TrainInputs, run_train

    cfg = load_config("configs/demo_maskrcnn_cpu.yaml")
    with start_run("train", config=cfg, root="./cvray-runs", seed=cfg.seed) as run:
        summary = run_train(run, cfg.train, TrainInputs("/tmp/synth/coco"))
    summary["metrics"]["segm_AP"]
"""
from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from cvray.data.coco import image_records, load_coco
from cvray.io import storage
from cvray.train.config import TrainConfig
from cvray.train.data import CategoryMap
from cvray.train.engine import NonFiniteLossError
from cvray.train.worker import TrainJob, WorkerEnv, run_worker

__all__ = ["NonFiniteLossError", "TrainInputs", "fit", "make_job", "run_train"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[..., None]  # on_progress(done, total, **info)


@dataclass(frozen=True)
class TrainInputs:
    """What the train stage reads.

    ``dataset``: a COCO dataset root (``annotations/instances_<split>.json`` + ``images/``,
    local or S3). ``seed``: the base seed of the run; ``None`` (the default) takes the run's
    recorded seed (``run.manifest["seed"]``, which ``run_context`` sets from the config's
    top-level ``seed``), and 0 when there is no run or it recorded none.
    """

    dataset: str
    seed: int | None = None


def _seed(run: Any, inputs: TrainInputs) -> int:
    if inputs.seed is not None:
        return int(inputs.seed)
    recorded = (getattr(run, "manifest", None) or {}).get("seed") if run is not None else None
    return int(recorded) if recorded is not None else 0


def make_job(run: Any, section: TrainConfig, inputs: TrainInputs, *, extra_hooks: Iterable = ()) -> TrainJob:
    """Resolve the dataset layout (``<root>/annotations/instances_<split>.json``, ``<root>/images``)."""
    if not isinstance(section, TrainConfig):
        raise TypeError(f"the train stage takes its TrainConfig section (cfg.train), not a "
                        f"{type(section).__name__}")
    # a local path is made absolute here, on the driver: Ray Train workers run in other folders
    dataset_uri = inputs.dataset if storage.is_s3(inputs.dataset) else os.path.abspath(inputs.dataset)
    ann = lambda split: storage.join(dataset_uri, "annotations", f"instances_{split}.json")  # noqa: E731
    train_ann = ann(section.train_split)
    if not storage.exists(train_ann):
        raise FileNotFoundError(f"{dataset_uri}: no training annotations at {train_ann}")
    val_ann = ann(section.val_split)
    if not storage.exists(val_ann):
        log.warning("%s: no %s split; training without validation", dataset_uri, section.val_split)
        val_ann = None
    elif not load_coco(val_ann)["images"]:  # evaluating nothing would report AP 0.0 as a result
        log.warning("%s has no images; training without validation", val_ann)
        val_ann = None
    cats = CategoryMap.from_coco(load_coco(train_ann))
    if section.model.num_classes is not None and section.model.num_classes != cats.num_classes:
        raise ValueError(f"train.model.num_classes={section.model.num_classes} but {train_ann} has "
                         f"{cats.num_classes} categories")
    return TrainJob(cfg=section, seed=_seed(run, inputs), run=run,
                    images_root=storage.join(dataset_uri, "images"), train_annotations=train_ann,
                    val_annotations=val_ann, categories=cats, resume=section.resume,
                    extra_hooks=tuple(extra_hooks))


def fit(job: TrainJob, on_progress: ProgressCallback | None = None, *,
        initial_checkpoint: dict | None = None) -> dict[str, Any]:
    """Train in this process (rank 0 of 1), no Ray: the reference loop for tests and benchmarks.

    ``initial_checkpoint``: a checkpoint dict to continue from (a Tune trial's, which may be
    another trial's under PBT); its model, optimizer, schedule position and RNG are restored and
    the job's own ``optim.lr`` / ``weight_decay`` apply from there on."""
    recs = [(r, None) for r in image_records(load_coco(job.train_annotations))]

    def train_records(epoch: int):
        order = list(recs)
        if job.cfg.shuffle:
            random.Random(job.seed * 100003 + epoch).shuffle(order)
        return order

    steps = len(recs) // job.cfg.batch_size // job.cfg.grad_accum_steps
    import torch

    # this process's GPU when it has one (a Tune trial with tune.trial_gpus sees its share), unless
    # train.use_gpu=false
    gpu = job.cfg.use_gpu is not False and torch.cuda.is_available()
    return run_worker(job, WorkerEnv(train_records=train_records, steps_per_epoch=steps or None,
                                     device=torch.device("cuda" if gpu else "cpu"),
                                     on_progress=on_progress, initial_checkpoint=initial_checkpoint))


def run_train(run: Any, section: TrainConfig, inputs: TrainInputs, *, ray: bool = True,
              extra_hooks: Iterable = (), on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Train per ``section`` (the config's ``train`` section) on ``inputs.dataset``; results,
    checkpoints and curves go into ``run``. Returns the summary dict (``metrics`` holds the final
    COCO AP / mIoU) and stores it in ``run.summary``.

    ``on_progress(done, total, **info)`` is called as iterations complete (``info``: ``loss``
    and, after the first evaluation, the best-metric's last value, e.g. ``segm_AP``): from a hook
    in this process with ``ray=False``; with Ray from a driver thread polling the progress file
    the main worker writes (``<run>/progress.json``, every ~2 s).

    Raises :class:`NonFiniteLossError` when the loss diverges (the last good checkpoint stays).
    """
    job = make_job(run, section, inputs, extra_hooks=extra_hooks)
    if run is not None:
        run.update(dataset={"uri": inputs.dataset, "train": job.train_annotations,
                            "val": job.val_annotations, "categories": list(job.categories.names)})
    if ray:
        from cvray.train.distributed import train_with_ray

        summary = train_with_ray(job, on_progress=on_progress)
    else:
        summary = fit(job, on_progress=on_progress)
        summary["workers"] = 1
    if run is not None:
        run.summary.update({k: v for k, v in summary.items() if k not in ("checkpoint_write_s",)})
    return summary
