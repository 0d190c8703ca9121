"""Evaluation time: cvray (faster-coco-eval) vs pycocotools on the same GT and results.

Uses the shared COCO oracle (100 val2014 images) tiled ``--copies`` times (image and annotation
ids offset per copy) so the timing is not dominated by start-up. Checks that both give the same
12 stats (to 1e-9) before reporting times. Also times cvray's error analysis (TIDE-style) on the
same data.

    python benchmarks/bench_eval.py --copies 10 [--write docs/benchmarks.md]
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np

REF = Path(__file__).resolve().parents[2] / "shared" / "refdata" / "coco"


def tile(gt: dict, res: list[dict], copies: int) -> tuple[dict, list[dict]]:
    off_img = max(im["id"] for im in gt["images"]) + 1
    off_ann = max(a["id"] for a in gt["annotations"]) + 1
    g = {"images": [], "annotations": [], "categories": gt["categories"]}
    r = []
    for k in range(copies):
        g["images"] += [{**im, "id": im["id"] + k * off_img} for im in gt["images"]]
        g["annotations"] += [{**a, "id": a["id"] + k * off_ann, "image_id": a["image_id"] + k * off_img}
                             for a in gt["annotations"]]
        r += [{**x, "image_id": x["image_id"] + k * off_img} for x in res]
    return g, r


def pycocotools_stats(gt: dict, res: list[dict], iou_type: str) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(res))
        e = COCOeval(cg, cd, iou_type)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return np.asarray(e.stats[:12])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write", default=None, help="append the table to this markdown file")
    args = ap.parse_args()
    from cvray.evaluate.coco import STAT_KEYS, coco_evaluate
    from cvray.evaluate.errors import analyze_errors

    gt0 = json.loads((REF / "instances_val2014_100.json").read_text())
    rows = []
    for iou_type in ("bbox", "segm"):
        res0 = json.loads((REF / f"instances_val2014_fake{iou_type}100_results.json").read_text())
        gt, res = tile(gt0, res0, args.copies)
        t_py, t_cv = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            s_py = pycocotools_stats(gt, res, iou_type)
            t_py.append(time.perf_counter() - t)
            t = time.perf_counter()
            out = coco_evaluate(gt, res, iou_type)
            t_cv.append(time.perf_counter() - t)
        s_cv = np.array([out.stats[k] for k in STAT_KEYS])
        assert np.abs(s_cv - s_py).max() < 1e-9, (s_cv, s_py)
        t = time.perf_counter()
        analyze_errors(gt, res, iou_type)
        t_err = time.perf_counter() - t
        rows.append((iou_type, len(gt["images"]), len(res), min(t_py), min(t_cv), t_err))
    head = (f"\n## Inference and evaluation: COCO evaluation time\n\n{date.today()}, {platform.machine()}, "
            f"{platform.python_version()}, shared 2-CPU machine; `benchmarks/bench_eval.py --copies {args.copies}` "
            f"(shared COCO oracle tiled x{args.copies}; best of {args.repeats}; both give identical stats to 1e-9).\n\n"
            "| iou type | images | detections | pycocotools s | cvray (faster-coco-eval) s | speed-up | cvray error analysis s |\n"
            "|---|---:|---:|---:|---:|---:|---:|\n")
    body = "".join(f"| {t} | {n} | {d} | {a:.2f} | {b:.2f} | {a / b:.1f}x | {e:.2f} |\n" for t, n, d, a, b, e in rows)
    print(head + body)
    if args.write:
        with open(args.write, "a") as f:
            f.write(head + body)


if __name__ == "__main__":
    main()
