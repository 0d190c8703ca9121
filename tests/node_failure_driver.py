"""Driver for test_predict_node_failure: runs in its own process with its own multi-node
``ray.cluster_utils.Cluster`` (never the test session's Ray), removes a worker node mid-run and
prints one JSON line with what was written."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main(work: str) -> int:
    import ray
    from ray.cluster_utils import Cluster

    from cvray.predict.config import GeometryConfig, PostprocessConfig, PredictConfig
    from cvray.predict.engine import ModelFactory
    from cvray.predict.distributed import predict_ray
    from cvray.predict.sources import list_units
    from cvray.runs import start_run
    from predict_helpers import tiny_model_config, write_images

    work_dir = Path(work)
    write_images(work_dir / "imgs", 8, seed=11)
    (work_dir / "imgs" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    model_cfg = tiny_model_config(work_dir)
    units = list_units(str(work_dir / "imgs"))

    # fast failure detection so the lost node is noticed in seconds, not the default ~30 s
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False,
        "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 3}})
    workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    removed = {"at": None}

    def on_progress(done, total, ips):
        # 3. take a node away once some rows have arrived: its tasks and actor are lost mid-run
        if removed["at"] is None and done >= 3:
            removed["at"] = done
            cluster.remove_node(workers[0], allow_graceful=False)

    cfg = PredictConfig(batch_size=2, chunk_size=3, num_actors=2, num_cpus_per_actor=1.0,
                        geometry=GeometryConfig(size=(64, 64)),
                        postprocess=PostprocessConfig(score_threshold=0.0))
    t0 = time.time()
    try:
        with start_run("predict", root=str(work_dir / "runs")) as run:
            summary = predict_ray(units, run, cfg=cfg, model_factory=ModelFactory(model_cfg),
                                  on_progress=on_progress)
        preds = run.read_table("predictions").column("image_id").to_pylist()
        issues = run.read_table("issues").column("image_id").to_pylist()
        # the run can finish before the health check (1.5 s) marks the killed node dead: wait for
        # it, bounded, before counting
        deadline = time.time() + 20
        while True:
            alive = sum(1 for n in ray.nodes() if n["Alive"])
            if alive <= 2 or time.time() > deadline:
                break
            time.sleep(0.25)
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps({"inputs": len(units), "pred_ids": preds, "issue_ids": issues, "removed_at": removed["at"],
                      "alive_nodes_after": alive, "summary": summary, "seconds": time.time() - t0}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
