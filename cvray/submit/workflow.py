"""The submit stage's workflow: ``prepare_submit`` (the job, as data) → ``run_submit`` (submit it
through the Jobs API, optionally follow its logs / wait, return its status).

``cvray submit`` makes no run of its own: the submitted command makes its run on the cluster, and
that run's manifest carries the job id (``job.id``), so ``cvray runs list --root s3://...`` finds it.

Example::

    inputs = prepare_submit(cfg.submit, ["validate", "s3://b/coco/annotations/instances_val.json",
                                          "--images", "s3://b/coco/images"])
    summary = run_submit(None, cfg.submit, inputs, follow=True, write=sys.stdout.write)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from cvray.submit.config import SubmitConfig
from cvray.submit.spec import JobSpec, job_spec

__all__ = ["SubmitInputs", "prepare_submit", "run_submit"]


@dataclass(frozen=True)
class SubmitInputs:
    spec: JobSpec
    address: str | None = None


def prepare_submit(section: SubmitConfig, argv: list[str], *, address: str | None = None,
                   submission_id: str | None = None) -> SubmitInputs:
    """The job for ``cvray <argv>`` (:class:`~cvray.runs.errors.InputError` when it cannot be)."""
    return SubmitInputs(spec=job_spec(section, list(argv), submission_id=submission_id),
                        address=address or section.address)


def run_submit(run: Any, section: SubmitConfig, inputs: SubmitInputs, *, follow: bool = False,
               wait: bool = False, timeout_s: float | None = None,
               write: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Submit; with ``follow`` stream the logs through ``write`` until the job ends, with ``wait``
    wait quietly. Returns ``{job, address, status, exit_code, ...}`` (``run`` is unused: None)."""
    import dataclasses
    import tempfile

    from cvray.submit import distributed as jobs
    from cvray.submit.spec import snapshot

    client = jobs.connect(inputs.address)
    spec = inputs.spec
    with tempfile.TemporaryDirectory(prefix="cvray-submit-") as tmp:
        wd = snapshot(spec.runtime_env["working_dir"], spec.runtime_env.get("excludes", []), tmp)
        job = jobs.submit(client, dataclasses.replace(spec, runtime_env={**spec.runtime_env, "working_dir": wd}))
    out: dict[str, Any] = {"job": job, "address": client._cvray_address, "command": spec.command,
                           "entrypoint": spec.entrypoint}
    if follow and write is not None:
        jobs.tail(client, job, write)
    if follow or wait:
        row = jobs.wait(client, job, timeout_s=timeout_s)
        out.update(status=row["status"], exit_code=jobs.exit_code(row) if row["status"] in jobs.TERMINAL
                   else None, message=row["message"])
    else:
        out["status"] = jobs.status(client, job)["status"]
    return out
