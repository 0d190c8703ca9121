"""`cvray robustness` suite timings on this machine (issue "Robustness suites across workers",
point 7; the per-corruption timings are `benchmarks/bench_corruptions.py`):

1. suite wall time with 1 vs 2 model actors (target: >= 1.7x faster with 2 on 2 CPUs);
2. the suite's images/s against `cvray predict` on the same clean images (what corrupting and
   evaluating cost over inference).

Model: the robustness tests' small Mask R-CNN (the learning test's recipe, trained here first,
not timed); data: the easy synthetic set's val split repeated to --images images; cells: clean +
gaussian_noise, motion_blur, fog x severities 1, 3, 5 (10 cells: 5 per worker). Run by hand:
``.venv/bin/python benchmarks/bench_robustness.py [--no-write]``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from doc_section import cvray, write_section  # noqa: E402
sys.path.insert(0, str(REPO))
SECTION = "## Robustness suite (cvray robustness)"
CORRUPTIONS = "gaussian_noise,motion_blur,fog"
SEVERITIES = "1,3,5"  # clean + 3 x 3 = 10 cells: an even split over 2 workers



def bigger_val(root: str, n: int) -> str:
    """The easy set with its val split grown to ``n`` images (more of the same generator)."""
    from cvray.data.synth import make_coco
    from tests.tune_helpers import EASY

    out = Path(root).parent / f"val{n}"
    return make_coco(out, n_images=int(n / 0.2) + 5, seed=7, config=EASY)["root"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--images", type=int, default=48)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    from tests.robustness_helpers import trained_model

    with tempfile.TemporaryDirectory(prefix="cvray-bench-rob-") as d:
        tmp = Path(d)
        model, _ = trained_model(tmp / "model")
        data = bigger_val(str(tmp / "model" / "easy"), args.images)
        common = ["--model", model, "--data", data, "--corruptions", CORRUPTIONS, "--severities", SEVERITIES,
                  f"robustness.max_images={args.images}"]
        res = {}
        for w in (1, 2):
            out, wall = cvray("robustness", *common, f"robustness.workers={w}", "--root", str(tmp / f"r{w}"))
            res[w] = {"wall_s": wall, "cells": out["cells"], "images": out["images"],
                      "cells_wall_s": out["cells_wall_s"], "images_per_s": out["images_per_s"]}
        ann = os.path.join(data, "annotations", "instances_val.json")
        pred, pwall = cvray("predict", "--model", model, "--input", ann, "--root", str(tmp / "p"),
                            "predict.num_actors=2")
    rob_ips = res[2]["images_per_s"]  # inside the command: workers' start + cells (no Python/Ray start-up)
    pred_images = pred.get("images") or 0
    pred_ips = pred.get("images_per_s")  # inside the command likewise (Ray Data pipeline, 2 actors)
    out = {"workers": res, "speedup": res[1]["wall_s"] / res[2]["wall_s"],
           "speedup_cells": res[1]["cells_wall_s"] / res[2]["cells_wall_s"], "suite_images_per_s": rob_ips,
           "predict_images": pred_images, "predict_wall_s": pwall, "predict_images_per_s": pred_ips}
    print(json.dumps(out))
    if args.no_write:
        return
    day = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ok = "met" if out["speedup_cells"] >= 1.7 else "**not met**"
    lines = [SECTION, "",
             f"{day}, {platform.machine()}, {os.cpu_count()} CPUs (load average {load:.1f} at start), Python "
             f"{platform.python_version()}; `benchmarks/bench_robustness.py`: the small Mask R-CNN of the "
             f"robustness tests, {res[2]['images']} val images of 128 px, {res[2]['cells']} cells (clean + "
             f"{CORRUPTIONS.replace(',', ', ')} x severities {SEVERITIES.replace(',', ', ')}); walls include each command's start-up "
             "(Python, Ray, model load).", "",
             "| measure | target | measured | |", "|---|---:|---:|---|",
             f"| suite, 1 worker / 2 workers: the cells (incl. the workers' model load) | >= 1.7 | "
             f"{out['speedup_cells']:.2f} ({res[1]['cells_wall_s']:.0f} s / {res[2]['cells_wall_s']:.0f} s) | {ok} |",
             f"| the same, whole command (incl. Python, Ray start-up) | | {out['speedup']:.2f} "
             f"({res[1]['wall_s']:.0f} s / {res[2]['wall_s']:.0f} s) | |",
             f"| suite images/s, 2 workers (image x cell; corrupt + predict + evaluate) | | {rob_ips:.1f} | |"]
    if pred_ips:
        lines.append(f"| `cvray predict` images/s on the clean images (2 actors, its own pipeline time) | | "
                     f"{pred_ips:.1f} ({pred_images} images) | suite / predict = {rob_ips / pred_ips:.2f} |")
    text = "\n".join(lines) + "\n"
    write_section(SECTION, text)


if __name__ == "__main__":
    main()
