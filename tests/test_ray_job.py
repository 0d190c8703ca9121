"""A real `ray start --head` on loopback and the Jobs API: the same command runs as a Ray job."""
import json
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from ray_head import ray_head  # noqa: E402


@pytest.fixture(scope="module")
def head_node(s3_server):
    with ray_head() as head:
        yield head


def test_ingest_runs_as_ray_job_with_same_command(head_node, tmp_path):
    from ray.job_submission import JobStatus

    from cvray.data.synth import make_coco
    from cvray.runs import list_runs

    make_coco(tmp_path / "ds", 6, seed=4, image_size=(48, 48))
    root = str(tmp_path / "runs")
    client = head_node["client"]
    entrypoint = (f"{sys.executable} {REPO / 'jobs' / 'ingest.py'} --dataset {tmp_path / 'ds' / 'coco'} "
                  f"--root {root} --json")
    job = None
    for _ in range(60):  # the job agent comes up a little after the head node
        try:
            job = client.submit_job(entrypoint=entrypoint,
                                    runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}})
            break
        except RuntimeError as exc:
            if "No available agent" not in str(exc):
                raise
            time.sleep(2)
    assert job is not None, "the head node never accepted a job"
    deadline = time.time() + 240
    status = None
    while time.time() < deadline:
        status = client.get_job_status(job)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            break
        time.sleep(2)
    logs = client.get_job_logs(job)
    assert status == JobStatus.SUCCEEDED, logs[-3000:]
    summary = json.loads([line for line in logs.splitlines() if line.startswith("{")][-1])
    assert summary["images"] == 6 and summary["images_failed"] == 0
    runs = list_runs(root)
    assert len(runs) == 1 and runs[0]["status"] == "succeeded"
    # the job connected to the head node instead of starting its own Ray
    assert runs[0]["ray"]["address"].rsplit(":", 1)[1] == head_node["gcs"].rsplit(":", 1)[1]
