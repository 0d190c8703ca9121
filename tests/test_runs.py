"""Runs: manifests, idempotent parts, atomic visibility (a killed writer leaves no visible run)."""
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pytest

from cvray.cli.main import main
from cvray.config import load_config
from cvray.runs import RunNotFound, list_runs, load_manifest, read_table, start_run
from cvray.runs.tables import declare


def _t(name: str, **cols) -> pa.Table:
    """A test table carrying its (test) declared schema: Run.write_table refuses anything else."""
    t = pa.table(cols)
    return t.cast(declare(name, t.schema))


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "runs")
    return request.getfixturevalue("s3_bucket") + "/runs"


def test_manifest_records_config_seed_versions_git(root):
    cfg = load_config(None, ["seed=5", "storage.secret_access_key=shh"])
    with start_run("unit", config=cfg, root=root, seed=5, argv=["cvray", "unit"]) as run:
        run.write_table("scores", _t("scores", x=[1.0, 2.0]))
        run.update(dataset={"combined": "abc"})
        run.summary["n"] = 2
    m = load_manifest(root, run.id)
    assert m["status"] == "succeeded" and m["seed"] == 5 and m["summary"] == {"n": 2}
    assert m["config"]["seed"] == 5 and m["command"] == "unit" and m["argv"] == "cvray unit"
    assert m["environment"]["packages"]["torch"] and m["environment"]["packages"]["ray"]
    assert "sha" in m["git"] and m["dataset"] == {"combined": "abc"}
    assert m["tables"] == ["scores"]
    assert "shh" not in json.dumps(m)
    assert read_table(root, run.id, "scores").column("x").to_pylist() == [1.0, 2.0]


def test_failed_run_is_committed_with_status_and_error(root):
    with pytest.raises(ValueError):
        with start_run("unit", root=root, seed=0, argv=[]) as run:
            run.add_issues([{"stage": "t", "rule": "r", "severity": "error", "message": "bad", "image_id": 4}])
            raise ValueError("boom")
    m = load_manifest(root, run.id)
    assert m["status"] == "failed" and "boom" in m["error"]
    issues = read_table(root, run.id, "issues").to_pylist()
    assert issues[0]["image_id"] == 4 and issues[0]["message"] == "bad"


def test_retried_part_overwrites_never_duplicates(root):
    with start_run("unit", root=root, seed=0, argv=[]) as run:
        for _attempt in range(3):  # the same task retried three times
            run.write_table("preds", _t("preds", image_id=[1, 2, 3]), part="block-0007")
        run.write_table("preds", _t("preds", image_id=[4]), part="block-0008")
    assert sorted(read_table(root, run.id, "preds").column("image_id").to_pylist()) == [1, 2, 3, 4]


def test_unknown_run_is_clear_error(tmp_path):
    with pytest.raises(RunNotFound, match="nope"):
        load_manifest(str(tmp_path), "nope")


_WRITER = r"""
import sys, time, pyarrow as pa
from cvray.runs import start_run
from cvray.runs.tables import declare
_t = lambda name, **cols: pa.table(cols).cast(declare(name, pa.table(cols).schema))
with start_run("slow", root=sys.argv[1], seed=0, argv=[]) as run:
    for i in range(1000):
        run.write_table("t", _t("t", i=[i]), part=f"p{i:05d}")
        print(run.id, flush=True)
        time.sleep(0.05)
"""


def test_killed_writer_leaves_no_visible_run(tmp_path):
    root = str(tmp_path / "runs")
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, root], stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    for _ in range(3):
        proc.stdout.readline()  # a few parts are written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run_id and os.path.isdir(os.path.join(root, run_id, "tables", "t"))
    assert list_runs(root) == []
    with pytest.raises(RunNotFound):
        read_table(root, run_id, "t")


def test_cli_runs_list_and_show_json(tmp_path, capsys):
    root = str(tmp_path / "runs")
    with start_run("unit", root=root, seed=3, argv=[]) as run:
        run.write_table("t", _t("t", a=[1, 2, 3]))
    assert main(["runs", "list", "--root", root, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in listed["runs"]] == [run.id]
    assert main(["runs", "show", run.id[:-2], "--root", root, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["run_id"] == run.id and shown["table_rows"] == {"t": {"parts": 1, "rows": 3}}
    assert main(["runs", "show", "zzz", "--root", root]) == 2


def test_cli_override_error_exit_2(tmp_path, capsys):
    assert main(["runs", "list", "--root", str(tmp_path), "seed=abc"]) == 2
    assert "seed: expected int" in capsys.readouterr().err
