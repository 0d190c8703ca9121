"""The foundation commands end to end: synth → S3, ingest, doctor, demo, --json everywhere."""
import json
import os
import subprocess
import sys

import pytest

from cvray.cli.main import main
from cvray.io import storage
from cvray.runs import list_runs, read_table


def _json_out(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_synth_to_s3_then_ingest_from_s3(ray_session, s3_bucket, tmp_path, capsys):
    out = s3_bucket + "/synth"
    root = str(tmp_path / "runs")
    assert main(["data", "synth", "--out", out, "--images", "8", "--videos", "1", "--seed", "2",
                 "--root", root, "synth.image_size=[64,64]", "synth.frames=5", "--json"]) == 0
    s = _json_out(capsys)
    assert s["images"] == 8 and s["videos"] == 1 and sum(s["splits"].values()) == 8
    assert storage.exists(out + "/coco/annotations/instances_train.json")
    assert storage.exists(out + "/mot/SYN-01/gt/gt.txt")
    assert main(["data", "ingest", "--dataset", out + "/coco", "--root", root, "--json"]) == 0
    ing = _json_out(capsys)
    assert ing["images"] == 8 and ing["images_failed"] == 0
    runs = {m["command"]: m for m in list_runs(root)}
    assert set(runs) == {"data synth", "data ingest"}
    assert runs["data ingest"]["ray"]["resources"]["CPU"] >= 1
    summary = read_table(root, ing["run"], "dataset_summary")
    assert sum(summary.column("images").to_pylist()) == 8


def test_runs_written_to_s3_root(ray_session, s3_bucket, tmp_path, capsys):
    root = s3_bucket + "/runs"
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--images", "3", "--videos", "0",
                 "--root", root, "synth.image_size=[32,32]", "--json"]) == 0
    run_id = _json_out(capsys)["run"]
    assert main(["runs", "show", run_id, "--root", root, "--json"]) == 0
    assert _json_out(capsys)["status"] == "succeeded"


def test_demo_on_embedded_defaults_skip_train(ray_session, tmp_path, capsys):
    root = str(tmp_path / "runs")
    assert main(["demo", "--skip-train", "--root", root, "--images", "6", "--videos", "1",
                 "synth.image_size=[48,48]", "synth.frames=6", "--json"]) == 0
    s = _json_out(capsys)
    assert s["ingest"]["images"] == 6 and s["data"]["videos"] == 1
    assert os.path.isdir(s["run_uri"]) and list_runs(root)[0]["status"] == "succeeded"


def test_doctor_json_passes_here(ray_session, tmp_path, capsys):
    assert main(["doctor", "--root", str(tmp_path), "--json"]) == 0
    s = _json_out(capsys)
    names = {c["name"]: c["status"] for c in s["checks"]}
    assert s["ok"] and names["opencv mp4 video"] == "ok" and names["storage"] == "ok"
    assert names["ray cluster"] == "ok"
    assert names["detectron2"] in ("ok", "skip")


def test_doctor_fails_on_unwritable_storage(ray_session, capsys):
    assert main(["doctor", "--root", "s3://no-such-bucket-for-doctor/x", "--json"]) == 1
    s = _json_out(capsys)
    st = [c for c in s["checks"] if c["name"] == "storage"][0]
    assert st["status"] == "fail" and "no-such-bucket-for-doctor" in st["detail"]


def test_usage_errors_exit_2(capsys):
    assert main(["data", "synth"]) == 2  # --out missing
    assert main(["nosuchcommand"]) == 2


def _procs_mentioning(text: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", text], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def test_command_leaves_no_ray_processes_behind(tmp_path, s3_server):
    import shutil
    import tempfile

    ray_tmp = tempfile.mkdtemp(prefix="cvr", dir="/tmp")  # short: Ray's socket paths must fit
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = ray_tmp
    try:
        r = subprocess.run([sys.executable, "-m", "cvray.cli.main", "doctor", "--root", str(tmp_path),
                            "--json", "ray.num_cpus=1"], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        checks = {c["name"]: c for c in json.loads(r.stdout.strip().splitlines()[-1])["checks"]}
        assert checks["ray cluster"]["status"] == "ok"
        assert os.listdir(ray_tmp), "the command's Ray did not use RAY_TMPDIR"
        assert _procs_mentioning(ray_tmp) == []  # raylet, GCS, dashboard, workers: all gone
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
