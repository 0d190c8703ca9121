"""Driver for test_node_removed_mid_suite: its own multi-node ``ray.cluster_utils.Cluster`` (head
with 0 CPUs + 2 worker nodes of 1 CPU), a suite of 9 cells on 2 model actors, one worker node
removed after the first cell finishes; prints one JSON line."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(work: str, model: str, data: str) -> int:
    import ray
    from ray.cluster_utils import Cluster

    from cvray.config import load_config
    from cvray.robustness.workflow import prepare_robustness, run_robustness
    from cvray.runs import start_run

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False,
        "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 3}})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    cfg = load_config(None, ["robustness.corruptions=gaussian_noise,contrast,pixelate,brightness",
                             "robustness.severities=1,5", "robustness.workers=2", "robustness.max_images=8"])
    inputs = prepare_robustness(cfg.robustness, cfg.predict, model=model, data=data, seed=0)
    removed = {"at": None}

    def on_progress(done, total, **info):
        if removed["at"] is None and done >= 1:
            removed["at"] = done
            cluster.remove_node(nodes[0], allow_graceful=False)

    try:
        with start_run("robustness", root=str(Path(work) / "runs")) as run:
            summary = run_robustness(run, cfg.robustness, inputs, ray=True, on_progress=on_progress)
        keys = [(r["corruption"], r["severity"]) for r in run.read_table("robustness").to_pylist()]
        deadline = time.time() + 20
        while True:
            alive = sum(1 for n in ray.nodes() if n["Alive"])
            if alive <= 2 or time.time() > deadline:
                break
            time.sleep(0.25)
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps({"removed_at": removed["at"], "alive_nodes_after": alive, "keys": keys,
                      "cells": summary["cells"], "cells_failed": summary["cells_failed"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
