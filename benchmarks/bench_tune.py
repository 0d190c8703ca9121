"""`cvray tune` on 2 CPUs: Tune's overhead per trial, and what ASHA saves.

Targets (issue "Overnight hyperparameter search with Ray Tune"):

1. overhead: the same trials through `cvray tune` (one at a time, FIFO) take <= 1.15x the wall
   of running them one after another with `cvray train --no-ray` (each its own process, as a
   hand-rolled loop would);
2. ASHA: the wall time until ASHA has the best config is <= 0.5x the wall of running every trial
   to its full budget (FIFO), same trials, same concurrency (2 at once on 2 CPUs).

Trials: the demo's CPU Mask R-CNN on the learning test's easy synthetic set (2 classes, large
objects), lr from a log-uniform range and flip probability, 4 images per iteration: 40
iterations evaluated every 10 for the overhead comparison, 80 evaluated every 20 for ASHA's. Run by hand: ``.venv/bin/python benchmarks/bench_tune.py [--no-write]``;
writes its section of docs/benchmarks.md and prints JSON.
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

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from doc_section import cvray, write_section  # noqa: E402
sys.path.insert(0, str(REPO))
from tests.tune_helpers import easy_dataset, tune_config  # noqa: E402

SECTION = "## Hyperparameter search (cvray tune)"
TARGETS = {"overhead": 1.15, "asha": 0.5}
SPACE = {"optim.lr": {"type": "loguniform", "low": 2e-5, "high": 4e-3},
         "augment.hflip_prob": {"type": "uniform", "low": 0.0, "high": 0.5}}



def trials(run_uri: str) -> list[dict]:
    from cvray.io import storage

    return storage.read_table_dir(storage.join(run_uri, "tables", "trials")).to_pylist()


def curves(run_uri: str) -> list[dict]:
    from cvray.io import storage

    return storage.read_table_dir(storage.join(run_uri, "tables", "trial_curves")).to_pylist()


def overhead(tmp: Path, data: str, n: int) -> dict:
    cfg = tune_config(tmp / "fifo1.yaml", data, tune={"scheduler": "fifo", "num_samples": n,
                                                      "max_concurrent_trials": 1, "space": SPACE})
    out, tune_wall = cvray("tune", "--config", str(cfg), "--root", str(tmp / "runs"))
    seq = 0.0
    for t in trials(out["run_uri"]):  # the very same configs, one `cvray train` process each
        d = yaml.safe_load(cfg.read_text())
        d["train"] = json.loads(t["train_config"])
        d.pop("tune")
        p = tmp / f"train-{t['trial_id']}.yaml"
        p.write_text(yaml.safe_dump(d))
        _, wall = cvray("train", "--config", str(p), "--no-ray", "--root", str(tmp / "runs"))
        seq += wall
    return {"trials": n, "tune_wall_s": tune_wall, "sequential_wall_s": seq, "ratio": tune_wall / seq}


def asha_vs_full(tmp: Path, data: str, n: int) -> dict:
    """FIFO vs ASHA over the same ``n`` trials (same seed: the same sampled configs, in the same
    order), 80 iterations each, evaluated every 20; ASHA's rungs at 20 / 40 / 80. (At iteration
    10 every trial still scores AP 0 on this set, so a rung there stops nothing: ties pass.)"""
    res = {}
    for sched in ("fifo", "asha"):
        cfg = tune_config(tmp / f"{sched}.yaml", data, max_iter=80, eval_period=20, tune={
            "scheduler": sched, "num_samples": n, "max_concurrent_trials": 2, "grace_period": 20,
            "reduction_factor": 2, "space": SPACE})
        out, wall = cvray("tune", "--config", str(cfg), "--root", str(tmp / "runs"))
        rows, cur = trials(out["run_uri"]), curves(out["run_uri"])
        best = out["best"]["trial_id"]
        t0 = min(r["timestamp"] for r in cur)
        t_best = max(r["timestamp"] for r in cur if r["trial_id"] == best) - t0  # the best config's last report
        res[sched] = {"wall_s": wall, "search_s": max(r["timestamp"] for r in cur) - t0, "best_at_s": t_best,
                      "best_trial": best, "best_lr": out["best"]["config"]["optim.lr"],
                      "best_AP50": out["best"]["bbox_AP50"], "iterations": out["iterations_trained"],
                      "stopped": sum(r["status"] == "early_stopped" for r in rows)}
    res["ratio_best"] = res["asha"]["best_at_s"] / res["fifo"]["search_s"]
    res["ratio_wall"] = res["asha"]["wall_s"] / res["fifo"]["wall_s"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--trials", type=int, default=4, help="trials of the overhead comparison")
    ap.add_argument("--asha-trials", type=int, default=12)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cvray-bench-tune-") as d:
        tmp = Path(d)
        data = easy_dataset(tmp / "easy")
        o = overhead(tmp, data, args.trials)
        a = asha_vs_full(tmp, data, args.asha_trials)
    res = {"overhead": o, "asha": a}
    print(json.dumps(res))
    if args.no_write:
        return
    mark = lambda v, t: "met" if v <= t else "**not met**"  # noqa: E731
    day = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    f, s = a["fifo"], a["asha"]
    lines = [SECTION, "",
             f"{day}, {platform.machine()}, {os.cpu_count()} CPUs (load average {load:.1f} at start), "
             f"Python {platform.python_version()}; `benchmarks/bench_tune.py`: trials of the demo's CPU Mask "
             "R-CNN on the easy synthetic set, 4 images per iteration; the overhead comparison 40 iterations "
             "evaluated every 10, the ASHA comparison 80 iterations evaluated every 20 (rungs 20 / 40 / 80), "
             "lr log-uniform 2e-5..4e-3 and flip probability 0..0.5; walls include each command's start-up.", "",
             "| measure | target | measured | |", "|---|---:|---:|---|",
             f"| `cvray tune` (FIFO, 1 at a time) / the same {o['trials']} trainings one after another with "
             f"`cvray train --no-ray` | <= {TARGETS['overhead']} | {o['ratio']:.2f} ({o['tune_wall_s']:.0f} s / "
             f"{o['sequential_wall_s']:.0f} s) | {mark(o['ratio'], TARGETS['overhead'])} |",
             f"| ASHA: time to the best config / every trial to its full budget ({args.asha_trials} trials, 2 at "
             f"once) | <= {TARGETS['asha']} | {a['ratio_best']:.2f} ({s['best_at_s']:.0f} s / {f['search_s']:.0f} s) | "
             f"{mark(a['ratio_best'], TARGETS['asha'])} |",
             f"| ASHA whole search / FIFO whole search (wall, incl. start-up) | | {a['ratio_wall']:.2f} "
             f"({s['wall_s']:.0f} s / {f['wall_s']:.0f} s) | |", "",
             "| search | iterations trained | stopped early | best trial | its lr | its AP50 |",
             "|---|---:|---:|---|---:|---:|",
             f"| FIFO | {f['iterations']} | {f['stopped']} | {f['best_trial']} | {f['best_lr']:.2e} | {f['best_AP50']:.3f} |",
             f"| ASHA | {s['iterations']} | {s['stopped']} | {s['best_trial']} | {s['best_lr']:.2e} | {s['best_AP50']:.3f} |"]
    text = "\n".join(lines) + "\n"
    write_section(SECTION, text)


if __name__ == "__main__":
    main()
