"""``cvray submit COMMAND [args] --address URL`` and ``cvray jobs list | status | logs | stop``.

Submit any cvray command as a Ray Job::

    cvray submit train --config configs/maskrcnn_r50_fpn_1x.yaml --dataset s3://b/coco \\
        storage.root=s3://b/runs --address http://HEAD:8265 --follow

Everything on the line is the job's command line except submit's own flags -- ``--address`` (the
head's Jobs API, default ``RAY_API_SERVER_ADDRESS`` or ``http://127.0.0.1:8265``), ``--follow``
(stream the logs, exit with the job's status), ``--wait`` (wait without logs), ``--timeout S``,
``--job-id ID`` -- and ``submit.*`` overrides (``submit.working_dir``, ``submit.python``,
``submit.entrypoint_num_cpus``, ...). After ``--`` every word goes to the job as is. The job's
config and overrides are checked here first (an unknown key fails before anything is uploaded).
``--json`` goes to the job and also makes submit print its own summary as one JSON object.

Jobs::

    cvray jobs list [--json]            cvray jobs status JOB [--json]
    cvray jobs logs JOB [--follow]      cvray jobs stop JOB [--wait] [--json]

``jobs stop`` sends ``submit.stop_signal`` (SIGINT) and waits ``submit.stop_grace_s`` before Ray
kills the job, so the job's run is committed as ``interrupted`` with the tables it wrote.
"""
from __future__ import annotations

import argparse
import sys

from cvray.cli.common import CliError, emit

__all__ = ["register", "split_submit_argv"]

_OWN_VALUE = ("--address", "--timeout", "--job-id")
_OWN_FLAG = ("--follow", "--wait")


def split_submit_argv(words: list[str]) -> tuple[list[str], list[str]]:
    """(submit's own words, the job's command line) from the words after ``cvray submit``."""
    own, job = [], []
    i = 0
    while i < len(words):
        w = words[i]
        if w == "--":
            job += words[i + 1:]
            break
        name = w.split("=", 1)[0]
        if name in _OWN_VALUE:
            if "=" in w:
                own.append(w)
            else:
                own += words[i:i + 2]
                i += 1
        elif w in _OWN_FLAG:
            own.append(w)
        elif w.startswith("submit.") and "=" in w:
            own.append(w)
        elif w in ("-h", "--help") and not job:
            own.append(w)
        else:
            job.append(w)
            if w in ("--json", "-v", "--verbose"):
                own.append(w)
        i += 1
    return own, job


def register(sub) -> None:
    p = sub.add_parser("submit", help="run any cvray command as a Ray Job on a cluster",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", default=None, help="the head's Jobs API URL (http://HEAD:8265)")
    p.add_argument("--follow", action="store_true", help="stream the job's logs; exit with its status")
    p.add_argument("--wait", action="store_true", help="wait for the job to end; exit with its status")
    p.add_argument("--timeout", type=float, default=None, help="with --follow/--wait: give up after S s")
    p.add_argument("--job-id", default=None, help="the submission id (default cvray-<command>-<random>)")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*", default=[], help="submit.* overrides")
    p.set_defaults(func=cmd_submit, job_argv=[])

    j = sub.add_parser("jobs", help="list / status / logs / stop the Ray Jobs of a cluster")
    js = j.add_subparsers(dest="jobs_cmd", metavar="ACTION")
    for name, helptext in (("list", "every job the cluster knows"), ("status", "one job's status"),
                           ("logs", "one job's logs"), ("stop", "stop a job (SIGINT, then SIGKILL)")):
        a = js.add_parser(name, help=helptext)
        if name != "list":
            a.add_argument("job", help="the job's submission id (printed by cvray submit)")
        if name == "logs":
            a.add_argument("--follow", action="store_true", help="stream until the job ends")
        if name == "stop":
            a.add_argument("--wait", action="store_true", help="wait until the job has stopped")
        a.add_argument("--address", default=None, help="the head's Jobs API URL (http://HEAD:8265)")
        a.add_argument("--json", action="store_true", help="print one JSON object")
        a.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
        a.set_defaults(func=cmd_jobs)
    j.set_defaults(func=lambda a: (j.print_help(), 2)[1])


def _job_config(job_argv: list[str], submit_overrides: list[str]):
    """The job's config, checked here (unknown keys fail before upload), plus submit's section."""
    from cvray.config import load_config

    config = None
    for k, w in enumerate(job_argv):
        if w == "--config" and k + 1 < len(job_argv):
            config = job_argv[k + 1]
        elif w.startswith("--config="):
            config = w.split("=", 1)[1]
    overrides = [w for w in job_argv if "=" in w and not w.startswith("-")] + submit_overrides
    return load_config(config, overrides)


def _quiet_ray(verbose: bool) -> None:
    """Ray's packaging INFO/WARNING lines (default excludes, .gitignore) only with -v."""
    import logging

    import ray  # noqa: F401  (configures its logger on import; set the level after)

    logging.getLogger("ray").setLevel(logging.INFO if verbose else logging.ERROR)


def cmd_submit(args: argparse.Namespace) -> int:
    from cvray.submit.workflow import prepare_submit, run_submit

    job_argv = list(args.job_argv)
    if not job_argv:
        raise CliError("cvray submit needs a command to run, e.g. `cvray submit train --dataset s3://... "
                       "--address http://HEAD:8265`")
    cfg = _job_config(job_argv, list(args.overrides))
    inputs = prepare_submit(cfg.submit, job_argv, address=args.address, submission_id=args.job_id)
    _quiet_ray(args.verbose)
    write = (sys.stderr if args.json else sys.stdout).write
    if not args.json:
        print(f"cvray submit: {inputs.spec.command} -> {inputs.spec.submission_id}", file=sys.stderr)
    summary = run_submit(None, cfg.submit, inputs, follow=args.follow, wait=args.wait,
                         timeout_s=args.timeout, write=write)
    summary["next"] = (f"cvray jobs logs {summary['job']} --follow --address {summary['address']}"
                       if summary.get("exit_code") is None else
                       f"cvray runs list --root <the job's storage.root>  (job.id = {summary['job']})")
    emit(summary, args, title="cvray submit")
    return int(summary["exit_code"]) if summary.get("exit_code") is not None else 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from cvray.submit import distributed as jobs

    _quiet_ray(args.verbose)
    client = jobs.connect(args.address)
    action = args.jobs_cmd
    if action == "list":
        rows = jobs.list_jobs(client)
        if args.json:
            emit({"jobs": rows}, args)
        else:
            _print_jobs(rows)
        return 0
    if action == "status":
        row = jobs.status(client, args.job)
        emit(row, args, title=f"job {args.job}")
        return 0
    if action == "logs":
        if args.follow:
            jobs.tail(client, args.job, sys.stdout.write)
            row = jobs.status(client, args.job)
            return jobs.exit_code(row) if row["status"] in jobs.TERMINAL else 0
        text = jobs.logs(client, args.job)
        if args.json:
            emit({"job": args.job, "logs": text}, args)
        else:
            sys.stdout.write(text)
        return 0
    if action == "stop":
        stopped = jobs.stop(client, args.job)
        row = jobs.wait(client, args.job, timeout_s=600) if args.wait else jobs.status(client, args.job)
        emit({**row, "stop_requested": stopped}, args, title=f"job {args.job}")
        return 0
    raise CliError("cvray jobs list | status JOB | logs JOB | stop JOB")


def _print_jobs(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Ray jobs")
    for col in ("job", "status", "command", "driver_exit_code", "message"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*[str(r.get(c) if r.get(c) is not None else "") for c in
                        ("job", "status", "command", "driver_exit_code", "message")])
    Console(highlight=False, width=160).print(table)
