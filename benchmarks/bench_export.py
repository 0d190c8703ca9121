"""Latency of eager torch vs the exported FP32 and INT8 ONNX models (onnxruntime), per image, on
the same letterboxed images, the three backends interleaved over several repeats (a neighbour's load
shows up as a repeat that disagrees instead of as a skewed comparison). docs/export.md "Measured".

    python benchmarks/bench_export.py --train-run cvray-runs/<train run> --export-run cvray-runs/<export run> \
        --input SUITE/annotations/instances_val.json --images 46 --repeats 3 --size 128 --threads 1
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-run", required=True)
    ap.add_argument("--export-run", required=True)
    ap.add_argument("--input", required=True, help="images folder or COCO JSON")
    ap.add_argument("--images", type=int, default=46)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=128, help="letterbox side (predict.geometry.size)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()

    import torch

    from cvray.export.workflow import _run_model, read_images
    from cvray.models import build_model
    from cvray.models.onnx_backend import OnnxDetector
    from cvray.predict.config import PredictConfig
    from cvray.predict.model_spec import resolve_model, run_categories
    from cvray.predict.options import GeometryConfig
    from cvray.predict.sources import list_units

    torch.set_num_threads(args.threads)
    cats = run_categories(args.train_run)
    cfg, _ = resolve_model(args.train_run, PredictConfig().model, len(cats) if cats else None)
    models = {"eager": build_model(cfg).eval()}
    for variant, name in (("onnx_fp32", "model.onnx"), ("onnx_int8", "model.int8.onnx")):
        models[variant] = OnnxDetector(f"{args.export_run}/artifacts/export/{name}", threads=args.threads).eval()
    units = sorted(list_units(args.input), key=lambda u: int(u.get("image_id", 0)))
    _, images = read_images(units, args.images, GeometryConfig(size=(args.size, args.size)))
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in models}
    dets: dict[str, float] = {}
    for _ in range(args.repeats):
        for k, m in models.items():
            outs, t = _run_model(m, images, args.warmup)
            ms = np.asarray(t) * 1e3
            runs[k].append((float(np.percentile(ms, 50)), float(np.percentile(ms, 95))))
            dets[k] = float(np.mean([len(o["boxes"]) for o in outs]))
    out = {"images": len(images), "size": args.size, "threads": args.threads, "repeats": args.repeats}
    for k, v in runs.items():
        a = np.asarray(v)
        out[k] = {"p50_ms": round(float(np.median(a[:, 0])), 2), "p95_ms": round(float(np.median(a[:, 1])), 2),
                  "p50_per_repeat": [round(x, 2) for x in a[:, 0]], "detections_per_image": round(dets[k], 2)}
    out["speedup_p50"] = {k: round(out["eager"]["p50_ms"] / out[k]["p50_ms"], 3) for k in ("onnx_fp32", "onnx_int8")}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
