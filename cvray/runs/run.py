"""Runs: every command makes one, and its results are Parquet tables under the run's folder.

Layout (``<root>/<run_id>/``)::

    _started.json              written at start (not a visible run: no manifest yet)
    tables/<name>/<part>.parquet  one part per task; writing a part again replaces it
    artifacts/...              PNG plots, HTML report, videos, checkpoints
    manifest.json              written LAST: the run becomes visible when it exists

A writer killed mid-run leaves ``_started.json`` and maybe some parts, but no manifest, so
``cvray runs list`` and readers never see a partial run. A retried Ray task rewrites its own
part file (same name), so rows are never duplicated.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import secrets
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import pyarrow as pa

from cvray.io import storage
from cvray.runs.env import environment_info, git_info
from cvray.runs.issues import Issue, issues_to_table
from cvray.runs.tables import check_table

__all__ = ["MANIFEST", "MANIFEST_SCHEMA_VERSION", "Run", "RunNotFound", "list_runs", "load_manifest",
           "read_table", "start_run"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STARTED = "_started.json"
MANIFEST_SCHEMA_VERSION = 1


class RunNotFound(LookupError):
    pass


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_run_id(run_id: str) -> str:
    """``run_id`` if it names one folder directly under the runs root; else :class:`InputError`
    (``../x``, ``a/b``, an absolute path or an empty id would put the run elsewhere)."""
    from cvray.runs.errors import InputError

    if not isinstance(run_id, str) or not RUN_ID.match(run_id) or ".." in run_id:
        raise InputError(f"run id {run_id!r}: a run id is one folder name under the runs root "
                         "(letters, digits, '.', '_', '-'; no '/' or '..')")
    return run_id


def new_run_id(command: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() else "-" for c in command)[:24] or "run"
    return f"{stamp}-{safe}-{secrets.token_hex(3)}"


@dataclass
class Run:
    """A handle on one run folder. Picklable: Ray tasks receive it and write their own parts."""

    root: str
    id: str
    command: str = ""
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    summary: dict[str, Any] = field(default_factory=dict, repr=False)
    _issues: list[Issue | Mapping] = field(default_factory=list, repr=False)

    @property
    def uri(self) -> str:
        return storage.join(self.root, self.id)

    def path(self, *parts: str) -> str:
        return storage.join(self.uri, *parts)

    # -- results -------------------------------------------------------------------------
    def write_table(self, name: str, table: pa.Table, part: str = "part-00000") -> str:
        """Write (or replace) one part of table ``name``; returns its URI.

        The table must carry its declared schema's ``cvray.table`` / ``cvray.schema_version``
        metadata (:mod:`cvray.runs.tables`); anything else raises :class:`TableContractError`.
        """
        if "/" in name or "/" in part or name.startswith("_"):
            raise ValueError(f"table and part names may not contain '/': {name!r}, {part!r}")
        table = check_table(name, table)
        uri = self.path("tables", name, f"{part}.parquet")
        storage.write_parquet(table, uri)
        return uri

    def read_table(self, name: str) -> pa.Table:
        return storage.read_table_dir(self.path("tables", name))

    def tables(self) -> list[str]:
        return storage.list_dirs(self.path("tables"))

    def write_artifact(self, relpath: str, data: bytes) -> str:
        if relpath.startswith("/") or ".." in relpath.split("/"):
            raise ValueError(f"artifact path must stay inside the run: {relpath!r}")
        uri = self.path("artifacts", relpath)
        storage.write_bytes(uri, data)
        return uri

    def add_issues(self, rows: Iterable[Issue | Mapping]) -> None:
        """Queue issue rows; they are written as the ``issues`` table's driver part."""
        self._issues.extend(rows)

    def flush_issues(self) -> None:
        if self._issues:
            self.write_table("issues", issues_to_table(self._issues), part="driver")

    # -- manifest --------------------------------------------------------------------------
    def update(self, **fields: Any) -> None:
        """Add fields to the manifest (dataset fingerprint, ray resources ...).

        ``dataset`` is merged into what is there (the run context records the fingerprint, the
        stage may add what it resolved, e.g. its split files), every other field replaced.
        """
        if isinstance(fields.get("dataset"), Mapping) and isinstance(self.manifest.get("dataset"), Mapping):
            fields["dataset"] = {**self.manifest["dataset"], **fields["dataset"]}
        self.manifest.update(fields)

    def finish(self, status: str, error: str | None = None) -> None:
        self.flush_issues()
        self.manifest.update(
            status=status,
            ended_at=_now(),
            error=error,
            summary=self.summary,
            tables=self.tables(),
        )
        storage.write_json(self.path(MANIFEST), self.manifest)


def _job_info() -> dict[str, Any] | None:
    """The Ray job this run belongs to, when ``cvray submit`` started it (``CVRAY_JOB_ID``)."""
    job = os.environ.get("CVRAY_JOB_ID")
    return {"id": job} if job else None


class start_run:
    """Context manager creating a run; on exit the manifest is committed (status set).

    Example::

        with start_run("demo", config=cfg, root="./cvray-runs", seed=0) as run:
            run.write_table("summary", table)
            run.summary["images"] = 10
    """

    def __init__(self, command: str, *, config: Any = None, root: str = "./cvray-runs",
                 seed: int | None = None, argv: list[str] | None = None, run_id: str | None = None):
        from cvray.config import config_to_dict

        cfg = config_to_dict(config) if hasattr(config, "model_dump") else (config or {})
        root = str(root) if storage.is_s3(str(root)) else storage.resolve(str(root))[1]
        self.run = Run(root=root, id=check_run_id(run_id) if run_id else new_run_id(command), command=command)
        self.run.manifest = {
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "run_id": self.run.id,
            "command": command,
            "argv": shlex.join(argv if argv is not None else sys.argv),
            "config": cfg,
            "seed": seed,
            "started_at": _now(),
            "status": "running",
            "git": git_info(),
            "environment": environment_info(),
            "dataset": None,
            "ray": None,
            "job": _job_info(),
        }

    def __enter__(self) -> Run:
        storage.write_json(self.run.path(STARTED), {k: self.run.manifest[k] for k in
                                                    ("run_id", "command", "argv", "started_at")})
        return self.run

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            self.run.finish("succeeded")
        else:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            try:
                self.run.finish(status, error=f"{exc_type.__name__}: {exc}")
            except Exception:  # the original error matters more than a failed manifest write
                log.exception("could not write the manifest of failed run %s", self.run.id)
        return False


def load_manifest(root: str, run_id: str) -> dict[str, Any]:
    uri = storage.join(root, run_id, MANIFEST)
    if not storage.exists(uri):
        raise RunNotFound(f"no committed run {run_id!r} under {root} (missing {MANIFEST})")
    return storage.read_json(uri)


def list_runs(root: str, *, unreadable: list[dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """Manifests of the committed runs under ``root``, newest first.

    A manifest that cannot be read or parsed (or is not a JSON object) does not stop the listing:
    it is appended to ``unreadable`` when that is a list (else logged) as ``{"run_id", "error"}``.
    A root that does not exist lists as no runs (the CLI refuses it first).
    """
    out = []
    for name in storage.list_dirs(root):
        uri = storage.join(root, name, MANIFEST)
        if not storage.exists(uri):
            continue
        try:
            m = storage.read_json(uri, expect=dict, what="manifest must be a JSON object")
        except storage.StorageError as exc:
            if unreadable is not None:  # the caller reports it
                unreadable.append({"run_id": name, "error": str(exc)})
            else:
                log.warning("run %s: unreadable manifest: %s", name, exc)
            continue
        m.setdefault("run_id", name)
        out.append(m)
    return sorted(out, key=lambda m: str(m.get("started_at") or ""), reverse=True)


def read_table(root: str, run_id: str, name: str) -> pa.Table:
    load_manifest(root, run_id)  # only committed runs are readable
    return storage.read_table_dir(storage.join(root, run_id, "tables", name))
