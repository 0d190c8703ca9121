"""Issue 18 item 19: ``runs list`` survives a corrupt manifest and refuses a missing root."""
from __future__ import annotations

import json

from cvray.cli.main import main
from cvray.runs import list_runs, start_run


def _two_runs(root: str) -> list[str]:
    ids = []
    for cmd in ("a", "b"):
        with start_run(cmd, root=root) as run:
            ids.append(run.id)
    return ids


def test_one_corrupt_manifest_is_a_row_not_a_failure(tmp_path, capsys):
    root = str(tmp_path / "runs")
    good, bad = _two_runs(root)
    (tmp_path / "runs" / bad / "manifest.json").write_text("{not json")
    unreadable = []
    assert [m["run_id"] for m in list_runs(root, unreadable=unreadable)] == [good]
    assert [u["run_id"] for u in unreadable] == [bad] and "manifest.json" in unreadable[0]["error"]
    assert main(["runs", "list", "--root", root, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = {r["run_id"]: r for r in out["runs"]}
    assert rows[good]["status"] == "succeeded" and rows[bad]["status"] == "unreadable"
    assert "not valid JSON" in rows[bad]["error"]
    assert main(["runs", "list", "--root", root]) == 0
    captured = capsys.readouterr()
    assert bad in captured.out and "unreadable" in captured.err


def test_missing_root_is_an_error_naming_it(tmp_path, capsys):
    missing = str(tmp_path / "nonexistent")
    assert main(["runs", "list", "--root", missing]) == 2
    assert missing in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["runs", "list", "--root", str(tmp_path / "empty"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == []


def test_missing_bucket_is_an_error_naming_it(s3_server, capsys):
    uri = "s3://no-such-bucket-cvray/runs"
    assert main(["runs", "list", "--root", uri]) == 2
    assert uri in capsys.readouterr().err
