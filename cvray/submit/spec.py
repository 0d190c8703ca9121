"""What a submitted job is, as plain data (pure: no Ray): its id, entrypoint and runtime env.

:func:`job_spec` turns ``cvray submit train --dataset s3://b/coco train.max_iter=10`` into

* ``entrypoint``: ``python -m cvray.cli.main train --dataset s3://b/coco train.max_iter=10``
  (the same CLI; Ray sets ``RAY_ADDRESS`` for the driver so it joins the cluster);
* ``runtime_env``: the project as ``working_dir`` (with ``excludes``), the non-secret storage
  variables by value (endpoint, region, profile name); credentials are never in it: the job's
  processes inherit the cluster nodes' own (instance profile / IRSA / the nodes' environment).
  (A ``${NAME}`` reference would not help: Ray expands it from the same node environment the
  job inherits anyway, and a name the node lacks becomes an empty value -- an empty
  ``AWS_SESSION_TOKEN`` breaks S3 multipart uploads.) ``RAY_JOB_STOP_SIGNAL`` + ``RAY_JOB_STOP_WAIT_TIME_S`` (a stopped job gets SIGINT
  and a grace period to commit its run as ``interrupted``), and ``CVRAY_JOB_ID`` (recorded in the
  run manifest, so ``cvray runs list`` finds the job's run);
* ``metadata``: command and submitter only, never a credential.
"""
from __future__ import annotations

import fnmatch
import os
import re
import shlex
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

from cvray.runs.errors import InputError
from cvray.submit.config import SECRET_ENV, STORAGE_ENV, SubmitConfig

__all__ = ["JobSpec", "SECRET_WORDS", "UPLOAD_CAP_MIB", "check_no_secrets", "job_spec", "snapshot",
           "upload_size"]

UPLOAD_CAP_MIB = 512  # Ray's limit on a working_dir / py_modules package
SECRET_WORDS = re.compile(r"(secret|password|token|access_key)", re.I)
COMMANDS_WITH_SUBCOMMANDS = {"data", "runs", "track", "jobs"}


@dataclass(frozen=True)
class JobSpec:
    submission_id: str
    command: str                     # e.g. "train", "track eval"
    argv: tuple[str, ...]            # the cvray command line after "cvray"
    entrypoint: str
    runtime_env: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    entrypoint_num_cpus: float = 1.0
    entrypoint_num_gpus: float = 0.0
    entrypoint_resources: dict[str, float] = field(default_factory=dict)


def check_no_secrets(argv: list[str]) -> None:
    """A credential on the command line would be stored in the job's entrypoint for anyone with
    access to the cluster to read: refuse it and say how to pass it instead."""
    for word in argv:
        key = word.split("=", 1)[0] if "=" in word else ""
        if key and SECRET_WORDS.search(key):
            raise InputError(f"{key}=...: credentials are not passed on a submitted command line (they "
                             f"would be stored in the job's entrypoint); set them in the cluster's "
                             f"environment or instance profile ({', '.join(SECRET_ENV)})")


def _excluded(rel: str, patterns: list[str]) -> bool:
    """Whether ``rel`` (a path relative to the working dir) matches one of ``patterns``, with the
    gitignore rules Ray applies to ``excludes`` and ``.rayignore``: a pattern with a slash (leading
    or inside) is anchored at the working dir (``/data`` is the top-level ``data`` folder, not the
    ``cvray/data`` package); one without matches a name at any depth (``*.pt``, ``.venv``);
    ``**/`` matches at any depth; a folder excluded excludes everything under it.
    ``tests/test_submit.py`` checks this against Ray's own matcher."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pat in patterns:
        pat = pat.rstrip("/")
        if pat.startswith("**/"):
            pat = pat[3:]
            if "/" not in pat:
                if any(fnmatch.fnmatchcase(p, pat) for p in parts):
                    return True
                continue
            if any(fnmatch.fnmatchcase("/".join(parts[i:j]), pat)
                   for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)):
                return True
        elif "/" in pat:
            if any(fnmatch.fnmatchcase(p, pat.lstrip("/")) for p in prefixes):
                return True
        elif any(fnmatch.fnmatchcase(p, pat) for p in parts):
            return True
    return False


def upload_size(working_dir: str, excludes: list[str]) -> tuple[int, int]:
    """(bytes, files) that the working dir upload would hold after ``excludes`` (an upper bound:
    Ray also skips what ``.gitignore`` lists)."""
    total = files = 0
    for dirpath, dirnames, filenames in os.walk(working_dir):
        rel_dir = os.path.relpath(dirpath, working_dir).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not _excluded(rel_dir + d, excludes)]
        for f in filenames:
            if _excluded(rel_dir + f, excludes):
                continue
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
                files += 1
            except OSError:
                pass
    return total, files


def snapshot(working_dir: str, excludes: list[str], dest: str) -> str:
    """Copy ``working_dir`` minus ``excludes`` into ``dest`` and return it.

    Ray hashes a working dir twice (once for the job's runtime env, once when it zips and uploads
    it); a file written in between (an editor, a test, a second job writing its run into the
    project) gives two different package names and the job fails with "Failed to download
    runtime_env file package". A snapshot cannot change between the two.
    """
    import shutil

    def ignore(dirpath: str, names: list[str]) -> list[str]:
        rel = os.path.relpath(dirpath, working_dir).replace(os.sep, "/")
        rel = "" if rel == "." else rel + "/"
        return [n for n in names if _excluded(rel + n, excludes) or os.path.islink(os.path.join(dirpath, n))]

    target = os.path.join(dest, "working_dir")
    shutil.copytree(working_dir, target, ignore=ignore)
    return target


def _command_words(argv: list[str]) -> str:
    words = [argv[0]]
    if argv[0] in COMMANDS_WITH_SUBCOMMANDS and len(argv) > 1 and not argv[1].startswith("-") \
            and "=" not in argv[1]:
        words.append(argv[1])
    return " ".join(words)


def job_spec(section: SubmitConfig, argv: list[str], *, environ: Mapping[str, str] | None = None,
             submission_id: str | None = None) -> JobSpec:
    """The job for the cvray command line ``argv`` (the words after ``cvray``)."""
    environ = os.environ if environ is None else environ
    if not argv or argv[0].startswith("-"):
        raise InputError("cvray submit needs a command to run, e.g. `cvray submit train --dataset s3://...`")
    if argv[0] in ("submit", "jobs"):
        raise InputError(f"cvray submit {argv[0]}: submit a stage command (train, tune, validate, ...), "
                         "not a job-management command")
    check_no_secrets(argv)
    command = _command_words(argv)
    wd = os.path.abspath(section.working_dir)
    if not os.path.isdir(wd):
        raise InputError(f"submit.working_dir={section.working_dir}: no such folder")
    size, _ = upload_size(wd, section.excludes)
    if size > section.max_upload_mib * 2**20:
        raise InputError(f"{wd}: {size / 2**20:.0f} MiB to upload after submit.excludes (the cap is "
                         f"{section.max_upload_mib} MiB; Ray's own is {UPLOAD_CAP_MIB}): add the large "
                         "folders to submit.excludes or keep data in object storage")
    sid = submission_id or f"cvray-{command.replace(' ', '-')}-{uuid.uuid4().hex[:10]}"
    env: dict[str, str] = {k: environ[k] for k in STORAGE_ENV if environ.get(k)}
    env.update({
        "CVRAY_JOB_ID": sid,
        "RAY_JOB_STOP_SIGNAL": section.stop_signal,
        "RAY_JOB_STOP_WAIT_TIME_S": str(section.stop_grace_s),
        "RAY_USAGE_STATS_ENABLED": environ.get("RAY_USAGE_STATS_ENABLED", "0"),
        "PYTHONUNBUFFERED": "1",
    })
    for k, v in section.env.items():
        if SECRET_WORDS.search(k):
            raise InputError(f"submit.env.{k}: a credential is not set by value (it would be stored in "
                             "the job's metadata); give it to the cluster's environment")
        env[k] = v
    runtime_env: dict[str, Any] = {"working_dir": wd, "excludes": list(section.excludes), "env_vars": env}
    if section.pip:
        runtime_env["pip"] = list(section.pip)
    entrypoint = shlex.join([section.python, "-m", "cvray.cli.main", *argv])
    return JobSpec(submission_id=sid, command=command, argv=tuple(argv), entrypoint=entrypoint,
                   runtime_env=runtime_env,
                   metadata={"cvray_command": command, "submitted_by": environ.get("USER", "unknown")},
                   entrypoint_num_cpus=section.entrypoint_num_cpus,
                   entrypoint_num_gpus=section.entrypoint_num_gpus,
                   entrypoint_resources=dict(section.entrypoint_resources))
