"""Runs and their results (manifest + Parquet tables); see :mod:`cvray.runs.run`."""
from cvray.runs.issues import ISSUE_SCHEMA, Issue, issues_to_table
from cvray.runs.run import Run, RunNotFound, list_runs, load_manifest, read_table, start_run
from cvray.runs.context import run_context

__all__ = ["ISSUE_SCHEMA", "Issue", "Run", "RunNotFound", "issues_to_table", "list_runs",
           "load_manifest", "read_table", "run_context", "start_run"]
