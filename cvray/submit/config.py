"""The ``submit:`` section: how ``cvray submit`` packages and places a job."""
from __future__ import annotations

from pydantic import Field

from cvray.config import CvrayModel

__all__ = ["DEFAULT_EXCLUDES", "SECRET_ENV", "STORAGE_ENV", "SubmitConfig"]

# Never uploaded with the working dir (Ray also skips what .gitignore lists): environments, runs,
# data and build outputs. Ray refuses a working_dir package over 512 MiB.
# gitignore syntax, as Ray reads ``excludes`` (and ``.rayignore``, which holds the same list for a
# bare ``ray job submit --working-dir .``): a leading "/" anchors at the project root, so "/data"
# and "/runs" are the top-level folders, never the cvray/data or cvray/runs packages
DEFAULT_EXCLUDES = (".git", ".venv", "venv", "**/__pycache__", "*.pyc", "cvray-runs", "/runs", "/data",
                    "/datasets", "*.egg-info", "/build", "/dist", ".pytest_cache", "/benchmarks/_out",
                    "*.pt", "*.pth", "*.mp4", "*.parquet")

# Storage settings passed to the job by value (not secret). Credentials (SECRET_ENV) are never
# passed: the job uses the cluster nodes' own, so no value is part of the job's metadata.
STORAGE_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE")
SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class SubmitConfig(CvrayModel):
    address: str | None = Field(None, description="Jobs API URL (default RAY_API_SERVER_ADDRESS, an http "
                                "RAY_ADDRESS, else http://127.0.0.1:8265)")
    working_dir: str = Field(".", description="uploaded as the job's working dir (the project)")
    excludes: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDES))
    max_upload_mib: int = Field(500, ge=1, description="refuse to upload more (Ray's cap is 512 MiB)")
    python: str = Field("python", description="the interpreter on the cluster that runs `-m cvray.cli.main`")
    entrypoint_num_cpus: float = Field(1.0, ge=0, description="the driver's CPUs (a CPU node)")
    entrypoint_num_gpus: float = Field(0.0, ge=0, description="0 keeps the driver off GPU nodes' GPUs")
    entrypoint_resources: dict[str, float] = Field(default_factory=dict,
                                                   description="e.g. {head: 0.001} to pin the driver")
    stop_signal: str = Field("SIGINT", pattern="^SIG(INT|TERM)$",
                             description="what `cvray jobs stop` sends first (runs end interrupted)")
    stop_grace_s: int = Field(60, ge=1, description="seconds between the stop signal and SIGKILL")
    env: dict[str, str] = Field(default_factory=dict, description="extra non-secret env vars for the job")
    pip: list[str] = Field(default_factory=list, description="extra pip packages for the job's env")
