"""Shared fixtures: one local Ray per test session, one real moto S3 server per session.

Nothing here mocks Ray or S3: ``ray_session`` starts a real local Ray (2 CPUs, dashboard on
127.0.0.1) and ``s3_server`` starts ``moto_server`` on a free loopback port and stops it by PID.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip(f"reference data folder {SHARED} is not laid beside the repo")
    return SHARED


@pytest.fixture(scope="session")
def dev(shared_dir) -> Path:
    """``../shared/refdata/mot-dev``: the 16 real MOTChallenge dev sequences (never TUD)."""
    root = shared_dir / "refdata" / "mot-dev"
    if not root.exists():
        pytest.skip(f"{root} is not laid beside the repo")
    return root


@pytest.fixture(scope="session")
def cpu_test_model(tmp_path_factory) -> tuple[str, str]:
    """(train run URI, COCO root): the robustness / calibrate / export tests' small trained model
    (tests/robustness_helpers.py), trained once per session; those tests only read it."""
    from tests.robustness_helpers import trained_model

    return trained_model(tmp_path_factory.mktemp("cpu-test-model"))


@pytest.fixture(scope="session")
def ray_session(s3_server):
    """One real local Ray for the whole test session (started lazily, shut down at the end).

    Starts after the S3 endpoint so its workers inherit the same ``AWS_*`` variables.
    """
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",  # never join a `ray start` cluster another test left on this machine
            num_cpus=2,
            include_dashboard=False,
            ignore_reinit_error=True,
            log_to_driver=False,
            configure_logging=False,
        )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_server():
    """A real HTTP S3 endpoint (moto_server) on 127.0.0.1; yields its endpoint URL.

    Sets the standard AWS_* variables for the session so every storage path in cvray finds it the
    same way a user's environment would.
    """
    # the project's own moto (the dev extra) first: another moto on PATH may be a version whose
    # CompleteMultipartUpload fails on empty objects (Ray Train's storage marker)
    venv_moto = Path(sys.executable).with_name("moto_server")
    exe = str(venv_moto) if venv_moto.exists() else shutil.which("moto_server")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            break
        except Exception:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start on " + endpoint)
            time.sleep(0.2)
    saved = {k: os.environ.get(k) for k in
             ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    yield endpoint
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture()
def s3_bucket(s3_server):
    """A fresh bucket on the moto endpoint; yields ``s3://<bucket>``."""
    import boto3

    name = "cvray-test-" + uuid.uuid4().hex[:10]
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return f"s3://{name}"
