"""A real ``ray start --head --block`` on 127.0.0.1 with its own free ports, for the Jobs API tests.

``ray start`` enables token authentication (the token in ~/.ray/auth_token); the Jobs client
reads it when ``RAY_AUTH_MODE=token``, as the ``ray job`` CLI does. The head is stopped by its
process group, and anything left under its temp dir is killed by PID.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ray_head(num_cpus: int = 1, env_extra: dict | None = None) -> Iterator[dict]:
    """Yields ``{"client", "gcs", "dashboard", "tmp"}``; ``RAY_AUTH_MODE=token`` is set meanwhile."""
    saved_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"
    from cvray.submit.distributed import refresh_auth_mode

    refresh_auth_mode()  # this process may have imported Ray (and read the mode) already
    ray_tmp = tempfile.mkdtemp(prefix="cvj", dir="/tmp")
    gcs, dash, agent, metrics, client_port = free_port(), free_port(), free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_TMPDIR=ray_tmp, **(env_extra or {}))
    ray_bin = str(Path(sys.executable).with_name("ray"))
    proc = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", f"--num-cpus={num_cpus}", "--num-gpus=0",
         f"--temp-dir={ray_tmp}", "--include-dashboard=true", "--disable-usage-stats",
         # free ports: the session's own Ray already holds the defaults (agent 52365, client 10001)
         f"--dashboard-agent-listen-port={agent}", f"--metrics-export-port={metrics}",
         f"--ray-client-server-port={client_port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        from ray.job_submission import JobSubmissionClient

        client, last = None, None
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                client = JobSubmissionClient(f"http://127.0.0.1:{dash}")
                client.list_jobs()
                break
            except Exception as exc:
                client, last = None, exc
                if proc.poll() is not None:
                    break
                time.sleep(1)
        if client is None:
            raise RuntimeError(f"ray head node's job server did not come up on 127.0.0.1 "
                               f"(ray start exit {proc.poll()}; last error: {last!r})")
        yield {"client": client, "gcs": f"127.0.0.1:{gcs}", "dashboard": f"http://127.0.0.1:{dash}",
               "tmp": ray_tmp}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # `ray start --block` never exits on it by itself:
            proc.wait(timeout=5)  # what is left is killed below (the teardown took 30 s for nothing)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        left = subprocess.run(["pgrep", "-f", ray_tmp], capture_output=True, text=True).stdout.split()
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)
        if saved_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved_mode
        refresh_auth_mode()
