"""How tracking and robustness-suite throughput change with the number of Ray nodes: a small
simulation on ``ray.cluster_utils.Cluster`` with 1, 2 and 3 virtual nodes of 1 CPU each.

    .venv/bin/python benchmarks/bench_cluster_scale.py [--sequences 6] [--frames 400] [--write docs/benchmarks.md]

The same synthetic MOTChallenge sequences (rendered once, before timing) are tracked by
``cvray.track.distributed.track_sequences`` -- one actor per sequence, at most one per CPU -- on a
cluster of N virtual nodes; wall time covers actor start, tracking and writing each sequence's
outputs. Virtual nodes share this machine's cores, so the numbers show how the work spreads over
nodes (one actor per node CPU), not more silicon: past the machine's core count they flatten.
The robustness suite (``cvray.robustness.workflow.run_robustness``: one task per corruption x
severity cell on one model actor per node) runs the robustness tests' small Mask R-CNN (trained
first, not timed) over 12 val images, 9 cells; wall time covers actor start (model load), the
cells and writing each cell's part. ``--skip-robustness`` leaves it out.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time

from cvray.data.synth_mot import make_mot
from cvray.track.config import TrackConfig
from cvray.track.workflow import prepare_track


def run(nodes: int, jobs, out: str) -> float:
    import ray
    from ray.cluster_utils import Cluster

    from cvray.track.distributed import track_sequences

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        cluster.wait_for_nodes()
        t0 = time.perf_counter()
        results = track_sequences(jobs, TrackConfig(), out)
        wall = time.perf_counter() - t0
        assert not [r for r in results if "error" in r], results
        return wall
    finally:
        ray.shutdown()
        cluster.shutdown()


def run_robustness_nodes(nodes: int, model: str, data: str, root: str) -> float:
    import ray
    from ray.cluster_utils import Cluster

    from cvray.config import load_config
    from cvray.robustness.workflow import prepare_robustness, run_robustness
    from cvray.runs import start_run

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        cluster.wait_for_nodes()
        cfg = load_config(None, ["robustness.corruptions=gaussian_noise,motion_blur,fog,jpeg_compression",
                                 "robustness.severities=1,3", f"robustness.workers={nodes}", "robustness.max_images=12"])
        inputs = prepare_robustness(cfg.robustness, cfg.predict, model=model, data=data, seed=0)
        t0 = time.perf_counter()
        with start_run("robustness", root=root) as run:
            s = run_robustness(run, cfg.robustness, inputs, ray=True)
        wall = time.perf_counter() - t0
        assert s["cells_failed"] == 0, s
        return wall
    finally:
        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequences", type=int, default=6)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--objects", type=int, default=20)
    ap.add_argument("--write", default=None)
    ap.add_argument("--skip-robustness", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with tempfile.TemporaryDirectory() as tmp:
        make_mot(tmp, args.sequences, seed=0, n_frames=args.frames, n_objects=args.objects)
        jobs = list(prepare_track(os.path.join(tmp, "mot"), out=os.path.join(tmp, "out")).jobs)
        rows = []
        for n in (1, 2, 3):
            wall = run(n, jobs, os.path.join(tmp, f"out{n}"))
            rows.append((n, wall, args.sequences / wall, args.sequences * args.frames / wall))
            print(f"{n} node(s): {wall:.1f} s, {rows[-1][2]:.2f} sequences/s, {rows[-1][3]:.0f} frames/s", flush=True)
    base = rows[0][2]
    lines = [f"### Tracking on 1-3 virtual Ray nodes ({dt.date.today()}, {platform.machine()}, "
             f"{os.cpu_count()} cores; `benchmarks/bench_cluster_scale.py`)", "",
             f"{args.sequences} synthetic sequences x {args.frames} frames x {args.objects} objects, one actor "
             "per sequence, nodes of 1 CPU each.", "",
             "| nodes | wall s | sequences/s | frames/s | vs 1 node |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {n} | {w:.1f} | {s:.2f} | {f:.0f} | {s / base:.2f}x |" for n, w, s, f in rows]
    if not args.skip_robustness:
        import sys

        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from tests.robustness_helpers import trained_model

        with tempfile.TemporaryDirectory() as tmp:
            model, data = trained_model(__import__("pathlib").Path(tmp) / "model")
            rob = []
            for n in (1, 2, 3):
                wall = run_robustness_nodes(n, model, data, os.path.join(tmp, f"rob{n}"))
                rob.append((n, wall, 9 / wall))
                print(f"robustness, {n} node(s): {wall:.1f} s, {9 / wall:.2f} cells/s", flush=True)
        lines += ["", "Robustness suite: 9 cells (clean + 4 corruptions x severities 1, 3) x 12 images of 128 px, "
                  "the robustness tests' small Mask R-CNN, one model actor per node.", "",
                  "| nodes | wall s | cells/s | vs 1 node |", "|---:|---:|---:|---:|"]
        lines += [f"| {n} | {w:.1f} | {c:.2f} | {c / rob[0][2]:.2f}x |" for n, w, c in rob]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(args.write, "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
