"""GPU checks, run by hand on a GPU node (CI has none): the training loop with AMP on CUDA and
batch-inference agreement between CUDA and CPU -- the code paths a CPU machine never exercises.

    python benchmarks/gpu_check.py [--iters 200] [--out gpu_check.json]

1. Train the demo Mask R-CNN in-process (the same worker code Ray Train runs) on a synthetic COCO
   set on CUDA, with AMP and without: losses finite, loss falls, iterations/s, final COCO AP.
2. ``Predictor`` on CUDA vs CPU on the same weights and images: every CPU detection above 0.2
   has a CUDA detection of the same label with IoU >= 0.9 and a score within 0.02.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def train(root: str, run_root: str, iters: int, amp: bool, device: torch.device) -> dict:
    from cvray.data.coco import image_records, load_coco
    from cvray.runs import start_run
    from cvray.train.config import TrainConfig
    from cvray.train.demo import DEMO_TRAIN
    from cvray.train.workflow import TrainInputs, make_job
    from cvray.train.worker import WorkerEnv, run_worker

    cfg = TrainConfig.model_validate({**DEMO_TRAIN, "max_iter": iters, "eval_period": iters,
                                      "checkpoint_period": iters, "log_period": 10, "amp": amp,
                                      "batch_size": 8, "torch_threads": None})
    with start_run("gpu-check", root=run_root) as run:
        job = make_job(run, cfg, TrainInputs(root, seed=0))
        recs = [(r, None) for r in image_records(load_coco(job.train_annotations))]

        def train_records(epoch: int):
            order = list(recs)
            random.Random(epoch).shuffle(order)
            return order

        t = time.perf_counter()
        summary = run_worker(job, WorkerEnv(device=device, train_records=train_records,
                                            steps_per_epoch=len(recs) // cfg.batch_size))
        sec = time.perf_counter() - t
        losses = [r["loss"] for r in run.read_table("train_curves").to_pylist() if r.get("loss") is not None]
    return {"amp": amp, "iters": summary["iterations"], "seconds": round(sec, 1),
            "iters_per_s": round(summary["iterations"] / sec, 2),
            "loss_first": summary["loss_first"], "loss_last": summary["loss_last"], "logged": len(losses),
            "all_finite": bool(np.isfinite(losses).all()) if losses else None,
            "metrics": summary.get("metrics"), "checkpoint": summary.get("checkpoint")}


def agreement(root: str, checkpoint: str | None, devices=("cpu", "cuda")) -> dict:
    from cvray.models import ModelConfig
    from cvray.predict.config import GeometryConfig, PostprocessConfig
    from cvray.predict.engine import ModelFactory, Predictor, predict_local
    from cvray.predict.sources import list_units
    from cvray.train.demo import DEMO_TRAIN

    mcfg = ModelConfig.model_validate({**DEMO_TRAIN["model"], "num_classes": 6,
                                       "weights": checkpoint, "box_score_thresh": 0.05})
    geometry = GeometryConfig(size=(128, 128))
    post = PostprocessConfig(score_threshold=0.05)
    out = {}
    for key, dev in zip(("cpu", "cuda"), devices):
        pred = Predictor(ModelFactory(mcfg), postprocess_cfg=post, device=dev)
        t = time.perf_counter()
        dets, issues = predict_local(list_units(root + "/images"), pred, geometry, batch_size=8)
        out[key] = ({d.file_name: d for d in dets}, time.perf_counter() - t, len(issues))
    from cvray.track.matching import box_iou

    n = hit = 0
    for name, c in out["cpu"][0].items():
        g = out["cuda"][0][name]
        keep = c.scores >= 0.2
        for b, s, lab in zip(c.boxes[keep], c.scores[keep], c.labels[keep]):
            n += 1
            same = g.labels == lab
            if same.any():
                iou = box_iou(b[None], g.boxes[same])[0]
                j = int(np.argmax(iou))
                hit += bool(iou[j] >= 0.9 and abs(g.scores[same][j] - s) <= 0.02)
    return {"images": len(out["cpu"][0]), "cpu_s": round(out["cpu"][1], 2), "cuda_s": round(out["cuda"][1], 2),
            "cpu_detections_over_0.2": n, "matched_on_cuda": hit,
            "agreement": round(hit / n, 4) if n else None, "issues": out["cpu"][2] + out["cuda"][2]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--out", default="gpu_check.json")
    args = ap.parse_args()
    from cvray.data.synth_coco import make_coco

    assert torch.cuda.is_available(), "no CUDA device"
    tmp = Path(tempfile.mkdtemp(prefix="cvray-gpu-"))
    info = make_coco(tmp / "data", args.images, seed=0)
    root = info["root"]
    dev = torch.device("cuda")
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    res["train_amp"] = train(root, str(tmp / "runs"), args.iters, True, dev)
    res["train_fp32"] = train(root, str(tmp / "runs"), args.iters, False, dev)
    res["predict"] = agreement(root, res["train_amp"]["checkpoint"])
    text = json.dumps(res, indent=1, default=str)
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
