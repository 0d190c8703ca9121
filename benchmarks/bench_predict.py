"""Batch inference throughput: cvray's Ray Data pipeline vs a plain single-process loop vs the
model's forward pass alone — same model, same images, same machine, one run.

* forward-only: ``Predictor.forward`` on pre-decoded, pre-letterboxed images (the ceiling);
* plain loop: read → decode → letterbox → forward → map back + NMS policy → records, in order
  (``cvray.predict.engine.predict_local``);
* cvray predict: ``predict_ray`` on a local Ray (``--cpus``), timed from first request to the
  last Parquet part, i.e. including actor start-up and model load.

    python benchmarks/bench_predict.py --images 48 --size 320 [--write docs/benchmarks.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--size", type=int, default=320, help="model input (square letterbox)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--cpus", type=int, default=os.cpu_count())
    ap.add_argument("--write", default=None)
    args = ap.parse_args()

    import ray

    from cvray.models import ModelConfig, build_model
    from cvray.predict.config import GeometryConfig, PostprocessConfig, PredictConfig
    from cvray.predict.engine import ModelFactory, Predictor, predict_local, preprocess_row
    from cvray.predict.pipeline import predict_ray
    from cvray.predict.sources import list_units, read_unit
    from cvray.runs import start_run
    from predict_helpers import write_images

    tmp = Path(tempfile.mkdtemp(prefix="cvray-bench-predict-"))
    write_images(tmp / "imgs", args.images, seed=0, size=(240, 320))
    cfg = ModelConfig(arch="fasterrcnn", backbone="mobilenet_v3_large_fpn", num_classes=3,
                      min_size=args.size, max_size=args.size, box_score_thresh=0.05)
    torch.manual_seed(0)
    torch.save({"model": build_model(cfg).state_dict()}, tmp / "w.pt")
    cfg = cfg.model_copy(update={"weights": str(tmp / "w.pt")})
    geometry = GeometryConfig(size=(args.size, args.size))
    post = PostprocessConfig()
    units = list_units(str(tmp / "imgs"))
    results = []

    # 1. forward only (decode + letterbox done beforehand, not timed)
    pred = Predictor(ModelFactory(cfg), postprocess_cfg=post)
    rows = [preprocess_row(r, geometry) for u in units for r in read_unit(u)]
    pred.forward([rows[0]["image"]])  # warm-up
    t = time.perf_counter()
    for i in range(0, len(rows), args.batch):
        pred.forward([r["image"] for r in rows[i:i + args.batch]])
    results.append(("forward only (1 process)", time.perf_counter() - t))

    # 2. plain single-process loop, same work as the pipeline
    t = time.perf_counter()
    dets, issues = predict_local(units, pred, geometry, batch_size=args.batch)
    results.append(("plain loop (1 process)", time.perf_counter() - t))
    assert len(dets) == args.images and not issues

    # 3. cvray predict on Ray Data (local Ray already started: start-up not counted)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        for label, kw in ((f"cvray predict, 1 actor x {args.cpus} threads",
                           dict(num_actors=1, num_cpus_per_actor=1, torch_threads=args.cpus)),
                          (f"cvray predict, {args.cpus} actors x 1 thread",
                           dict(num_actors=args.cpus, num_cpus_per_actor=1, torch_threads=1))):
            pc = PredictConfig(batch_size=args.batch, chunk_size=16, geometry=geometry, postprocess=post, **kw)
            with start_run("bench-predict", root=str(tmp / "runs")) as run:
                t = time.perf_counter()
                s = predict_ray(list_units(str(tmp / "imgs")), run, cfg=pc, model_factory=ModelFactory(cfg))
                results.append((label, time.perf_counter() - t))
            assert s["prediction_rows"] == args.images
    finally:
        ray.shutdown()

    # 4. forward only again: on a shared machine the load drifts; keep the better of the two
    t = time.perf_counter()
    for i in range(0, len(rows), args.batch):
        pred.forward([r["image"] for r in rows[i:i + args.batch]])
    again = time.perf_counter() - t
    results[0] = ("forward only (1 process, best of 2)", min(results[0][1], again))

    fwd = args.images / results[0][1]
    loop = args.images / results[1][1]
    head = (f"\n## Inference and evaluation: batch inference throughput\n\n{date.today()}, {platform.machine()}, "
            f"{os.cpu_count()} CPUs (shared with other jobs; no GPU), torch {torch.__version__}, ray {ray.__version__}; "
            f"`benchmarks/bench_predict.py --images {args.images} --size {args.size} --batch {args.batch}` "
            f"(Faster R-CNN MobileNetV3-FPN, untrained weights, 320x240 PNGs letterboxed to {args.size}²).\n\n"
            "| contender | images/s | seconds | vs plain loop | vs forward only |\n|---|---:|---:|---:|---:|\n")
    body = "".join(f"| {n} | {args.images / s:.2f} | {s:.1f} | {args.images / s / loop:.2f} | "
                   f"{args.images / s / fwd:.2f} |\n" for n, s in results)
    print(head + body)
    if args.write:
        with open(args.write, "a") as f:
            f.write(head + body)


if __name__ == "__main__":
    main()
