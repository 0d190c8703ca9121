"""Connect to a Ray cluster, or start the embedded local one; leave nothing running afterwards.

``RAY_ADDRESS`` / ``--address`` connect to an existing cluster (inside ``ray job submit`` Ray sets
``RAY_ADDRESS`` itself). Otherwise a local Ray starts with its dashboard and job server bound to
127.0.0.1 and is shut down when the block ends, so no Ray processes outlive the command.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Iterator

__all__ = ["cluster_resources", "follow_log_level", "ray_context"]

log = logging.getLogger(__name__)

# Variables that travel to every Ray worker so storage resolves URIs the same way there.
_FORWARDED_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_REGION",
                  "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def _runtime_env() -> dict[str, Any]:
    """Storage variables for the workers of the Ray we start or join -- except inside a Ray Job,
    whose own runtime env (``cvray submit``'s) already carries them: passing one again would
    conflict with it, and would copy the credential values into the job's config."""
    if os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR"):
        return {}
    env = {k: os.environ[k] for k in _FORWARDED_ENV if os.environ.get(k)}
    return {"env_vars": env} if env else {}


CONNECT_TIMEOUT_S = 10.0


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, naming the address as given, when nothing listens there: ``ray.init`` itself
    retries an unreachable GCS for minutes (and logs the address rewritten). ``auto`` and
    ``local`` are Ray's to resolve; ``ray://host:port`` (Ray Client) and ``host:port`` are probed."""
    from cvray.runs.errors import InputError

    if address in ("auto", "local") or address.startswith(("http://", "https://")):
        if address.startswith(("http://", "https://")):
            raise InputError(f"--address {address}: that is a dashboard / Jobs API URL; Ray commands "
                             "take the cluster's GCS address (HEAD:6379), `cvray submit` takes the URL")
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--address {address}: expected HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:10001")
    err = tcp_error(host, int(port), timeout_s)
    if err is not None:
        raise InputError(f"--address {address}: no Ray cluster answers there within {timeout_s:.0f} s "
                         f"({err}); start one with `ray start --head` or check the address")


def tcp_error(host: str, port: int, timeout_s: float) -> OSError | None:
    """None when something accepts a TCP connection at ``host:port`` within ``timeout_s``, else
    the error (the fail-fast probe of ``--address`` here and of the Jobs API in cvray submit)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return exc


@contextlib.contextmanager
def ray_context(ray_cfg: Any = None, address: str | None = None) -> Iterator[Any]:
    """Yield the ``ray`` module, initialised; shut down on exit only if we started it."""
    import ray

    given = address
    if given:  # an address the user gave is checked even when this process already has a Ray
        check_reachable(given)
    if ray.is_initialized():  # inside a job, a test session or an enclosing context
        follow_log_level()
        yield ray
        return
    address = address or getattr(ray_cfg, "address", None) or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"runtime_env": _runtime_env(), "log_to_driver": False,
                              "configure_logging": False}
    if address:
        if address != given and address != os.environ.get("RAY_ADDRESS"):  # from the config
            check_reachable(address)
        ray.init(address=address, **kwargs)
    else:
        include_dashboard = bool(getattr(ray_cfg, "include_dashboard", True))
        kwargs.update(
            num_cpus=getattr(ray_cfg, "num_cpus", None),
            num_gpus=getattr(ray_cfg, "num_gpus", None),
            include_dashboard=include_dashboard,
            dashboard_host=getattr(ray_cfg, "dashboard_host", "127.0.0.1"),
        )
        # address="local": always a new embedded Ray, never a cluster that happens to have been
        # started on this machine with `ray start` (ray.init() alone would join that one).
        kwargs["address"] = "local"
        try:
            ray.init(**kwargs)
        except Exception as exc:  # dashboard deps missing or port clash: run without it
            if not include_dashboard:
                raise
            log.warning("Ray dashboard could not start (%s); continuing without it", exc)
            kwargs["include_dashboard"] = False
            ray.init(**kwargs)
    follow_log_level()
    try:
        yield ray
    finally:
        ray.shutdown()


def follow_log_level() -> None:
    """Ray's own console log lines follow cvray's log level (INFO only with ``-v``).

    Ray Data configures its ``ray.data`` logger when first imported (a console handler at INFO:
    the ``streaming_executor`` lines), which undoes any level set before that import; so this runs
    after Ray is up, imports Ray Data and raises its console handler to WARNING unless cvray logs
    at INFO. The session log file under Ray's log directory keeps every line.
    """
    if logging.getLogger("cvray").getEffectiveLevel() <= logging.INFO:
        return
    import ray.data  # noqa: F401  (its import installs the handlers quieted below)

    for name in ("ray.data", "ray.train", "ray.tune"):
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if not isinstance(handler, logging.FileHandler) and getattr(handler, "name", "") != "file":
                handler.setLevel(max(handler.level, logging.WARNING))
        if not logger.handlers:
            logger.setLevel(logging.WARNING)


def cluster_resources() -> dict[str, Any]:
    """Resources and node count of the connected cluster (recorded in every run manifest)."""
    import ray

    if not ray.is_initialized():
        return {}
    ctx = ray.get_runtime_context()
    return {
        "address": getattr(ctx, "gcs_address", None),
        "nodes": sum(1 for n in ray.nodes() if n.get("Alive")),
        "resources": {k: v for k, v in ray.cluster_resources().items() if not k.startswith("node:")},
        "dashboard_url": getattr(ray.get_runtime_context(), "dashboard_url", None)
        if hasattr(ray.get_runtime_context(), "dashboard_url") else None,
    }
