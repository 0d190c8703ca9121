"""`cvray submit` / `cvray jobs` against a real `ray start --head` on loopback (token auth on), with
the runs in a real moto S3: jobs run the same CLI, their runs carry the job id, `jobs stop` lets the
job commit its run as interrupted. Plus the job spec as data: entrypoint, runtime env, excludes,
credentials never by value."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from cvray.cli.main import main
from cvray.cli.submit import split_submit_argv
from cvray.runs import list_runs
from cvray.runs.errors import InputError
from cvray.submit.config import DEFAULT_EXCLUDES, SubmitConfig
from cvray.submit.spec import job_spec, snapshot, upload_size

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from ray_head import ray_head  # noqa: E402


# -- the job as data -------------------------------------------------------------------------------

def test_split_keeps_submit_flags_and_passes_the_rest_to_the_job():
    own, job = split_submit_argv(["train", "--config", "c.yaml", "--address", "http://h:8265", "seed=3",
                                  "--follow", "submit.python=py", "--json", "--", "--follow"])
    assert own == ["--address", "http://h:8265", "--follow", "submit.python=py", "--json"]
    assert job == ["train", "--config", "c.yaml", "seed=3", "--json", "--follow"]


def test_job_spec_entrypoint_runtime_env_and_no_secret_values(tmp_path):
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "AKIAXXXX",
           "AWS_SECRET_ACCESS_KEY": "s3cr3t-value", "USER": "ana"}
    spec = job_spec(SubmitConfig(working_dir=str(REPO)), ["track", "eval", "--gt", "g", "--pred", "p"],
                    environ=env)
    assert spec.command == "track eval" and spec.submission_id.startswith("cvray-track-eval-")
    assert spec.entrypoint == "python -m cvray.cli.main track eval --gt g --pred p"
    ev = spec.runtime_env["env_vars"]
    assert ev["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"                  # not secret: by value
    assert not any(k in ev for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))  # the cluster's own
    assert ev["RAY_JOB_STOP_SIGNAL"] == "SIGINT" and ev["CVRAY_JOB_ID"] == spec.submission_id
    assert "s3cr3t-value" not in json.dumps([spec.entrypoint, spec.runtime_env, spec.metadata])
    assert ".venv" in spec.runtime_env["excludes"] and spec.runtime_env["working_dir"] == str(REPO)
    assert spec.entrypoint_num_gpus == 0 and spec.entrypoint_num_cpus == 1
    with pytest.raises(InputError, match="credentials are not passed"):
        job_spec(SubmitConfig(working_dir=str(REPO)), ["train", "storage.secret_access_key=x"], environ=env)
    with pytest.raises(InputError, match="not a job-management command"):
        job_spec(SubmitConfig(working_dir=str(REPO)), ["jobs", "list"], environ=env)


def test_upload_size_honours_excludes_and_the_cap(tmp_path):
    (tmp_path / "cvray").mkdir()
    (tmp_path / "cvray" / "a.py").write_bytes(b"x" * 1000)
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "big.so").write_bytes(b"x" * 3_000_000)
    (tmp_path / "w.pt").write_bytes(b"x" * 2_000_000)
    cfg = SubmitConfig(working_dir=str(tmp_path))
    assert upload_size(str(tmp_path), cfg.excludes) == (1000, 1)
    assert upload_size(str(tmp_path), []) == (5_001_000, 3)
    with pytest.raises(InputError, match="MiB to upload"):
        job_spec(SubmitConfig(working_dir=str(tmp_path), excludes=[], max_upload_mib=4), ["doctor"], environ={})


EXCLUDE_CASES = ["cvray/data/coco.py", "cvray/runs/context.py", "cvray/data", "data/x.jpg", "runs/r/m.json",
                 "datasets/a", "build/lib/x", "dist/y.whl", "docs/data/z.md", "tests/runs.py",
                 "cvray/__pycache__/a.pyc", "a/b/__pycache__", ".venv/lib/x.so", "sub/.venv/x",
                 "cvray-runs/r", "x/cvray-runs/y", "w.pt", "m/w.pth", "v/a.mp4", "t/p.parquet",
                 "benchmarks/_out/f", "benchmarks/bench_demo.py", "cvray.egg-info/PKG-INFO",
                 ".git/HEAD", "jobs/train.py", "configs/demo.yaml", ".pytest_cache/v"]


def test_excludes_match_like_rays_own_matcher():
    """cvray's snapshot and Ray's upload must leave out the same files: Ray's vendored pathspec
    (gitwildmatch, what it applies to ``excludes`` and ``.rayignore``) is the reference."""
    from ray._private.thirdparty.pathspec import PathSpec

    from cvray.submit.spec import _excluded

    spec = PathSpec.from_lines("gitwildmatch", list(DEFAULT_EXCLUDES))
    for rel in EXCLUDE_CASES:
        assert _excluded(rel, list(DEFAULT_EXCLUDES)) == spec.match_file(rel), rel
    # the packages named like top-level data/run folders stay in the upload
    assert not _excluded("cvray/data/coco.py", list(DEFAULT_EXCLUDES))
    assert not _excluded("cvray/runs/context.py", list(DEFAULT_EXCLUDES))
    assert _excluded("data/x.jpg", list(DEFAULT_EXCLUDES)) and _excluded("runs/r/m.json", list(DEFAULT_EXCLUDES))


def test_snapshot_holds_every_package_of_cvray(tmp_path):
    """A job imports cvray from its working dir: every subpackage must be in the snapshot (the old
    unanchored "data" / "runs" excludes dropped cvray/data and cvray/runs)."""
    wd = Path(snapshot(str(REPO), list(DEFAULT_EXCLUDES), str(tmp_path)))
    packages = sorted(p.parent.relative_to(REPO).as_posix() for p in (REPO / "cvray").rglob("__init__.py")
                      if "__pycache__" not in p.parts)
    missing = [p for p in packages if not (wd / p / "__init__.py").exists()]
    assert not missing, missing
    assert not (wd / ".venv").exists() and not (wd / "cvray-runs").exists()


def test_rayignore_is_the_default_excludes():
    """A bare `ray job submit --working-dir .` reads .rayignore: the same list as cvray submit."""
    lines = [ln.strip() for ln in (REPO / ".rayignore").read_text().splitlines()]
    assert [ln for ln in lines if ln and not ln.startswith("#")] == list(DEFAULT_EXCLUDES)


def test_unreachable_address_fails_fast_in_one_line(capsys):
    t0 = time.monotonic()
    assert main(["submit", "doctor", "--address", "http://127.0.0.1:1"]) == 2
    assert main(["jobs", "list", "--address", "127.0.0.1:1"]) == 2
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert "http://127.0.0.1:1: no Ray Jobs API answers there" in err and "Traceback" not in err


# -- against a real head ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def head(s3_server):
    with ray_head(num_cpus=2) as h:
        yield h


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("submit")
    assert main(["data", "synth", "--out", str(tmp / "ds"), "--images", "6", "--videos", "0",
                 "synth.image_size=[48,48]", "--root", str(tmp / "r"), "--json"]) == 0
    return tmp / "ds" / "coco"


def _submit(head, *job, extra=()):
    return main(["submit", *job, "--address", head["dashboard"], f"submit.python={sys.executable}",
                 f"submit.working_dir={REPO}", *extra])


def test_validate_and_train_jobs_write_their_runs_to_s3(head, dataset, s3_bucket, capsys):
    root = f"{s3_bucket}/runs"
    anns = sorted(str(p) for p in (dataset / "annotations").glob("instances_*.json"))
    capsys.readouterr()
    rc = _submit(head, "validate", *anns, "--images", str(dataset / "images"), "--no-baselines",
                 "--root", root, "--json", extra=["--wait", "--timeout", "300"])
    out = capsys.readouterr()
    summary = json.loads(out.out.strip().splitlines()[-1])
    assert rc == 0 and summary["status"] == "SUCCEEDED", (summary.get("message"), out.err[-2000:],
                                                          head["client"].get_job_logs(summary["job"])[-3000:])
    validate_job = summary["job"]

    rc = _submit(head, "train", "--dataset", str(dataset), "--root", root, "train.max_iter=2",
                 "train.num_workers=1", "train.optim.steps=[]", "train.tensorboard=false",
                 "train.model.backbone=mobilenet_v3_large_fpn", "train.model.min_size=48",
                 "train.model.max_size=48", "train.model.fpn_channels=32", "train.model.box_head_dim=64",
                 "train.model.mask_head_dim=32", "train.model.mask_head_layers=1", "train.eval_period=2",
                 "train.checkpoint_period=2", "--json", extra=["--follow", "--timeout", "400"])
    out = capsys.readouterr()
    train = json.loads(out.out.strip().splitlines()[-1])
    if rc != 0:
        Path("/tmp/train_job.log").write_text(head["client"].get_job_logs(train["job"]))
    assert rc == 0 and train["status"] == "SUCCEEDED", (train.get("message"),
                                                        head["client"].get_job_logs(train["job"])[-3000:])
    assert "cvray train" in out.err or "iterations" in out.err  # --follow streamed the job's logs

    runs = {m["command"]: m for m in list_runs(root)}
    assert runs["validate"]["status"] == "succeeded" and runs["validate"]["job"]["id"] == validate_job
    assert runs["train"]["status"] == "succeeded" and runs["train"]["job"]["id"] == train["job"]
    assert "issues" in runs["validate"]["tables"] and "train_curves" in runs["train"]["tables"]
    # the job joined the head's cluster instead of starting a Ray of its own
    assert runs["validate"]["ray"]["address"].rsplit(":", 1)[1] == head["gcs"].rsplit(":", 1)[1]
    # no credential value in the manifest, the job's metadata or its runtime env
    info = head["client"].get_job_info(validate_job)
    blob = json.dumps([runs["validate"], info.metadata, info.runtime_env, info.entrypoint])
    assert "testing" not in blob.replace("testing_", "")

    assert main(["jobs", "logs", validate_job, "--address", head["dashboard"]]) == 0
    assert '"passed": true' in capsys.readouterr().out  # the job's own --json summary
    assert main(["runs", "list", "--root", root, "--job", validate_job, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["runs"]
    assert row["command"] == "validate" and row["job"] == validate_job


def test_jobs_stop_ends_the_job_and_its_run_is_interrupted(head, tmp_path, s3_bucket, capsys):
    root = f"{s3_bucket}/runs"
    assert _submit(head, "data", "synth", "--out", str(tmp_path / "big"), "--images", "20000", "--videos", "0",
                   "--root", root, "--json") == 0
    job = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["job"]
    from cvray.io import storage

    deadline = time.time() + 180
    while not [d for d in storage.list_dirs(root) if storage.exists(storage.join(root, d, "_started.json"))] \
            if storage.exists(root) else True:
        assert time.time() < deadline, head["client"].get_job_logs(job)[-2000:]
        time.sleep(1)
    time.sleep(2)
    assert main(["jobs", "stop", job, "--wait", "--json", "--address", head["dashboard"]]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["status"] == "STOPPED" and row["stop_requested"], row
    assert main(["jobs", "status", job, "--json", "--address", head["dashboard"]]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "STOPPED"
    (m,) = list_runs(root)
    assert m["status"] == "interrupted" and m["job"]["id"] == job, m
    assert main(["jobs", "list", "--json", "--address", head["dashboard"]]) == 0
    assert job in [r["job"] for r in json.loads(capsys.readouterr().out)["jobs"]]


def test_an_overnight_tune_stopped_through_the_jobs_api_resumes_to_the_end(head, tmp_path, capsys):
    """docs/cluster.md's overnight search on a real head: ``cvray submit tune``; ``cvray jobs stop``
    mid-search (SIGINT through the job's stop signal: Tune's graceful stop writes its snapshot and
    the run ends interrupted); ``cvray submit tune --resume RUN`` finishes every trial, none twice."""
    from tests.tune_helpers import SANE_LR, easy_dataset, tune_config

    data = easy_dataset(tmp_path / "easy")
    cfg = tune_config(tmp_path / "tune.yaml", data, max_iter=20, tune={
        "scheduler": "fifo", "num_samples": 2, "max_concurrent_trials": 2,
        "space": {"optim.lr": {"type": "choice", "values": [SANE_LR, SANE_LR / 2]}}})
    root = tmp_path / "runs"
    assert _submit(head, "tune", "--config", str(cfg), "--root", str(root), "--json") == 0
    job = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["job"]
    deadline = time.time() + 300
    while not list(root.glob("*/ray/tune/*/result.json")) or not any(
            p.read_text().strip() for p in root.glob("*/ray/tune/*/result.json")):
        assert time.time() < deadline, head["client"].get_job_logs(job)[-3000:]
        time.sleep(1)
    assert main(["jobs", "stop", job, "--wait", "--json", "--address", head["dashboard"]]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "STOPPED"
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["job"]["id"] == job, m
    assert f"--resume {run_dir.name}" in m["summary"]["resume"]

    rc = _submit(head, "tune", "--resume", run_dir.name, "--root", str(root), "--json",
                 extra=["--wait", "--timeout", "400"])
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and done["status"] == "SUCCEEDED", head["client"].get_job_logs(done["job"])[-3000:]
    from cvray.io import storage

    trials = storage.read_table_dir(str(run_dir / "tables" / "trials")).to_pylist()
    assert len(trials) == 2 and all(t["status"] == "completed" for t in trials), trials
    curves = storage.read_table_dir(str(run_dir / "tables" / "trial_curves")).to_pylist()
    for t in trials:
        assert [r["iteration"] for r in curves if r["trial_id"] == t["trial_id"]] == [10, 20]
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "succeeded"
