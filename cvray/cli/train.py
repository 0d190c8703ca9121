"""``cvray train --config configs/X.yaml [--dataset URI] [key=value ...] [--json]``.

Trains with Ray Train (``train.num_workers`` workers; ``--no-ray`` runs the same loop in this
process). ``train.resume=true`` continues ``train.run_id`` -- or, when that is unset, the most
recent train run under the runs root that has a checkpoint -- at the same iteration and LR.

Progress goes to stderr (:class:`cvray.cli.progress.Progress`): iterations done, rate, ETA, loss
and the last validation metric, as a bar on a terminal and a plain line every 10 s otherwise.
"""
from __future__ import annotations

import argparse
import logging
import os

from cvray.cli.common import CliError, add_common_args, emit, load_cli_config

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("train", help="train a detector / segmenter with Ray Train (resumable)")
    add_common_args(p)
    p.add_argument("--dataset", default=None,
                   help="COCO dataset root (annotations/instances_<split>.json + images/); "
                        "default: data.root from the config")
    p.add_argument("--no-ray", action="store_true", help="train in this process, without Ray")
    p.set_defaults(func=cmd_train)


def latest_resumable_run(root: str) -> str | None:
    """Id of the newest ``train`` run under ``root`` with a ``checkpoints/latest.pt``."""
    from cvray.io import storage

    try:
        names = storage.list_dirs(root)
    except (storage.StorageError, FileNotFoundError):
        return None
    for name in sorted(names, reverse=True):  # run ids start with a UTC timestamp
        if "-train-" in name and storage.exists(storage.join(root, name, "checkpoints", "latest.pt")):
            return name
    return None


def _finished(root: str, run_id: str, max_iter: int) -> int | None:
    """The iteration a committed, succeeded train run ended at, when it reached ``max_iter``
    (None: not finished, or not found -- then a checkpoint must exist to resume from)."""
    from cvray.io import storage

    base = storage.join(root, run_id)
    manifest = storage.join(base, "manifest.json")
    if storage.exists(manifest):
        m = storage.read_json(manifest)
        it = (m.get("summary") or {}).get("iterations")
        if m.get("status") == "succeeded" and isinstance(it, int) and it >= max_iter:
            return it
    if not storage.exists(storage.join(base, "checkpoints", "latest.pt")):
        raise CliError(f"train.resume=true train.run_id={run_id}: no checkpoint at "
                       f"{storage.join(base, 'checkpoints', 'latest.pt')} to resume from")
    return None


def cmd_train(args: argparse.Namespace) -> int:
    from cvray.cli.progress import Progress
    from cvray.data.fingerprint import coco_fingerprint
    from cvray.data.workflow import coco_layout
    from cvray.runs import run_context
    from cvray.train.workflow import TrainInputs, run_train

    cfg = load_cli_config(args)
    dataset = args.dataset or cfg.data.root
    if not dataset:
        raise CliError("no dataset: pass --dataset URI or set data.root in the config")
    from cvray.io import storage
    from cvray.runs.run import check_run_id

    if not storage.is_s3(dataset):  # workers run in other folders: resolve it here, on the driver
        dataset = os.path.abspath(dataset)
    run_id = cfg.train.run_id
    if run_id is not None:
        check_run_id(run_id)  # no run outside the runs root
    if cfg.train.resume and run_id is None:
        run_id = latest_resumable_run(cfg.storage.root)
        if run_id is None:
            raise CliError(f"train.resume=true but no train run with a checkpoint under {cfg.storage.root}")
    if cfg.train.resume:
        done = _finished(cfg.storage.root, run_id, cfg.train.max_iter)
        if done is not None:  # resuming a finished run: nothing to train, nothing to write twice
            emit({"run": run_id, "resumed": False, "iterations": done,
                  "message": f"run {run_id} already finished at iteration {done} (train.max_iter="
                             f"{cfg.train.max_iter}); nothing to resume. Raise train.max_iter to train on."},
                 args, title="cvray train")
            return 0
    use_ray = not args.no_ray

    def fingerprint():  # every split present under the dataset root
        try:
            return coco_fingerprint(coco_layout(dataset))
        except FileNotFoundError:  # run_train names the missing file
            return {"uri": dataset}

    with run_context("train", cfg, argv=args.argv, ray=use_ray, address=args.address, run_id=run_id,
                     dataset=fingerprint) as run:
        with Progress("cvray train", "it", cfg.train.max_iter) as progress:
            summary = run_train(run, cfg.train, TrainInputs(dataset), ray=use_ray, on_progress=progress)
    m = summary.get("metrics", {})
    keys = ("bbox_AP", "bbox_AP50", "segm_AP", "segm_AP50", "mIoU", "mDice")
    out = {
        "run": run.id,
        "run_uri": run.uri,
        "iterations": summary["iterations"],
        "resumed_from": summary["start_iteration"] or None,
        "workers": summary.get("workers"),
        **{k: m[k] for k in keys if k in m},
        "best": {summary["best_metric_name"]: summary["best_metric"]},
        "loss_first": summary.get("loss_first"),
        "loss_last": summary.get("loss_last"),
        "images_per_s": summary.get("images_per_s"),
        "checkpoint": summary.get("checkpoint"),
        "best_checkpoint": summary.get("best_checkpoint"),
    }
    if not m:  # no val images: say so instead of an AP of 0.0 that looks like a result
        out["validation"] = "none: the val split has no images, so no AP was computed"
        out.pop("best")
    emit(out, args, title="cvray train")
    return 0
