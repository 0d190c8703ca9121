"""A real `ray start --head` on loopback and the Jobs API: the same command runs as a Ray job."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head_node(s3_server):
    # `ray start` enables token authentication (token in ~/.ray/auth_token); the Jobs client
    # reads it when RAY_AUTH_MODE=token, as the `ray job` CLI does.
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "token")
    ray_tmp = tempfile.mkdtemp(prefix="cvj", dir="/tmp")
    gcs, dash, agent, metrics, client_port = _port(), _port(), _port(), _port(), _port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = ray_tmp
    ray_bin = str(Path(sys.executable).with_name("ray"))
    proc = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--num-cpus=1", "--num-gpus=0",
         f"--temp-dir={ray_tmp}", "--include-dashboard=true", "--disable-usage-stats",
         # free ports: the session's own Ray already holds the defaults (agent 52365, client 10001)
         f"--dashboard-agent-listen-port={agent}", f"--metrics-export-port={metrics}",
         f"--ray-client-server-port={client_port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    from ray.job_submission import JobSubmissionClient

    client = None
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            client = JobSubmissionClient(f"http://127.0.0.1:{dash}")
            client.list_jobs()
            break
        except Exception:
            client = None
            time.sleep(1)
    if client is None:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("ray head node's job server did not come up on 127.0.0.1")
    yield {"client": client, "gcs": f"127.0.0.1:{gcs}", "tmp": ray_tmp}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    left = subprocess.run(["pgrep", "-f", ray_tmp], capture_output=True, text=True).stdout.split()
    for pid in left:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(ray_tmp, ignore_errors=True)
    mp.undo()


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
