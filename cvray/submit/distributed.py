"""Ray Jobs API adapter (the only module of the submit stage that imports Ray).

``JobSubmissionClient`` against the head's dashboard (``http://HEAD:8265``). Token authentication
(on by default for clusters started by Ray >= 2.5x): the client sends the token when
``RAY_AUTH_MODE=token`` and a token is found (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, else
``~/.ray/auth_token``); :func:`connect` turns that mode on when a token is there and the mode is
unset, and explains a refused request instead of printing the HTTP error.
"""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from cvray.runs.errors import InputError
from cvray.submit.spec import JobSpec

__all__ = ["JobsError", "connect", "exit_code", "job_row", "jobs_address", "list_jobs", "logs", "status", "stop",
           "submit", "tail", "wait"]

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
CONNECT_TIMEOUT_S = 5.0

AUTH_HELP = ("the Ray cluster at {addr} uses token authentication and refused this request. "
             "Set RAY_AUTH_MODE=token and the cluster's token: RAY_AUTH_TOKEN=<token>, or "
             "RAY_AUTH_TOKEN_PATH=<file> (default ~/.ray/auth_token); print it on the head node with "
             "`ray get-auth-token`. ({detail})")


class JobsError(InputError):
    """The Jobs API cannot be reached, refuses us, or does not know the job."""


def jobs_address(address: str | None) -> str:
    """``--address`` / ``submit.address``, else ``RAY_API_SERVER_ADDRESS``, an http(s)
    ``RAY_ADDRESS``, else the local head's ``http://127.0.0.1:8265``."""
    env = os.environ.get("RAY_ADDRESS", "")
    addr = address or os.environ.get("RAY_API_SERVER_ADDRESS") or (env if env.startswith("http") else "") \
        or "http://127.0.0.1:8265"
    return addr if "://" in addr else f"http://{addr}"


def _token_available() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    return os.path.isfile(path)


def refresh_auth_mode() -> None:
    """Make this process see ``RAY_AUTH_MODE`` as it is now: Ray reads it into its C++ config when
    first imported, so a mode set later (by us, or by a caller) needs the config re-read (what
    Ray's own CLI does when it turns token mode on)."""
    try:
        from ray._raylet import Config

        Config.initialize("")
    except Exception:  # a Ray without it reads the mode per request
        pass


def _reachable(addr: str) -> None:
    from cvray.raycluster import tcp_error

    u = urlparse(addr)
    err = tcp_error(u.hostname, u.port or (443 if u.scheme == "https" else 80), CONNECT_TIMEOUT_S)
    if err is not None:
        raise JobsError(f"{addr}: no Ray Jobs API answers there within {CONNECT_TIMEOUT_S:.0f} s ({err}); "
                        "give the head's dashboard address, e.g. --address http://HEAD:8265")


def _explain(addr: str, exc: Exception) -> Exception:
    text = str(exc)
    if "401" in text or "403" in text or "uthentication" in text or "Unauthorized" in text:
        return JobsError(AUTH_HELP.format(addr=addr, detail=text.strip().splitlines()[0][:200]))
    if "does not exist" in text or "404" in text:
        return JobsError(f"{addr}: {text.strip().splitlines()[0][:300]}")
    return exc


def connect(address: str | None):
    """A ``JobSubmissionClient`` for the cluster (fails fast, in one line, when it cannot)."""
    addr = jobs_address(address)
    _reachable(addr)
    if os.environ.get("RAY_AUTH_MODE") is None and _token_available():
        os.environ["RAY_AUTH_MODE"] = "token"
    refresh_auth_mode()
    from ray.job_submission import JobSubmissionClient

    try:
        client = JobSubmissionClient(addr)
    except Exception as exc:  # ConnectionError, RuntimeError from the SDK
        raise _explain(addr, exc) from exc
    client._cvray_address = addr
    return client


def _call(client, fn: Callable, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        err = _explain(getattr(client, "_cvray_address", "?"), exc)
        if err is exc:
            raise
        raise err from exc


def submit(client, spec: JobSpec, *, attempts: int = 30) -> str:
    """Submit; retries while a fresh head's job agent is still starting (bounded)."""
    for i in range(attempts):
        try:
            return _call(client, client.submit_job, entrypoint=spec.entrypoint,
                         submission_id=spec.submission_id, runtime_env=spec.runtime_env,
                         metadata=spec.metadata, entrypoint_num_cpus=spec.entrypoint_num_cpus,
                         entrypoint_num_gpus=spec.entrypoint_num_gpus,
                         entrypoint_resources=spec.entrypoint_resources or None)
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or i == attempts - 1:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


def job_row(details: Any) -> dict[str, Any]:
    """The fields ``cvray jobs`` shows (never the runtime env: it is the cluster's business)."""
    d = details.dict() if hasattr(details, "dict") else dict(details)
    status = d.get("status")
    status = getattr(status, "value", status)
    meta = d.get("metadata") or {}
    return {"job": d.get("submission_id") or d.get("job_id"), "status": str(status),
            "command": meta.get("cvray_command"), "entrypoint": d.get("entrypoint"),
            "start_time": d.get("start_time"), "end_time": d.get("end_time"),
            "driver_exit_code": d.get("driver_exit_code"), "message": d.get("message")}


def status(client, job: str) -> dict[str, Any]:
    return job_row(_call(client, client.get_job_info, job))


def list_jobs(client) -> list[dict[str, Any]]:
    rows = [job_row(j) for j in _call(client, client.list_jobs)]
    return sorted(rows, key=lambda r: r["start_time"] or 0)


def logs(client, job: str) -> str:
    return _call(client, client.get_job_logs, job)


def tail(client, job: str, write: Callable[[str], None]) -> None:
    """Stream the job's logs until it ends (Ctrl-C stops following, not the job)."""
    async def _follow():
        async for chunk in client.tail_job_logs(job):
            write(chunk)
    _call(client, asyncio.run, _follow())


def wait(client, job: str, *, timeout_s: float | None = None, poll_s: float = 1.0) -> dict[str, Any]:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        row = status(client, job)
        if row["status"] in TERMINAL:
            return row
        if deadline is not None and time.monotonic() > deadline:
            return row
        time.sleep(poll_s)


def stop(client, job: str) -> bool:
    return bool(_call(client, client.stop_job, job))


def exit_code(row: dict[str, Any]) -> int:
    """The job's exit status as a process exit code (a stopped job without one: 130)."""
    code = row.get("driver_exit_code")
    if row["status"] == "SUCCEEDED":
        return 0 if code is None else int(code)
    if row["status"] == "STOPPED":
        return int(code) if code not in (None, 0) else 130
    return int(code) if code not in (None, 0) else 1
