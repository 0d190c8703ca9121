"""Storage round trips on a local folder and on a real S3 endpoint (moto_server on 127.0.0.1)."""
import os
import socket

import pyarrow as pa
import pytest

from cvray.io import storage


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "store")
    return request.getfixturevalue("s3_bucket") + "/prefix"


def test_bytes_json_parquet_round_trip(root):
    storage.write_bytes(storage.join(root, "a", "b.bin"), b"\x00\x01")
    assert storage.read_bytes(storage.join(root, "a", "b.bin")) == b"\x00\x01"
    storage.write_json(storage.join(root, "x.json"), {"k": [1, 2]})
    assert storage.read_json(storage.join(root, "x.json")) == {"k": [1, 2]}
    t = pa.table({"a": [1, 2, 3], "s": ["x", "y", None]})
    storage.write_parquet(t, storage.join(root, "t", "p0.parquet"))
    storage.write_parquet(t.slice(0, 1), storage.join(root, "t", "p1.parquet"))
    assert storage.read_table_dir(storage.join(root, "t")).num_rows == 4
    files = storage.list_files(root)
    assert [f.rsplit("/", 1)[-1] for f in files] == ["b.bin", "p0.parquet", "p1.parquet", "x.json"]
    assert storage.exists(storage.join(root, "x.json"))
    assert not storage.exists(storage.join(root, "nope.json"))


def test_rewrite_replaces_not_appends(root):
    uri = storage.join(root, "t", "part-0.parquet")
    storage.write_parquet(pa.table({"a": [1, 2]}), uri)
    storage.write_parquet(pa.table({"a": [1, 2]}), uri)  # a retried task
    assert storage.read_table_dir(storage.join(root, "t")).num_rows == 2


def test_local_write_leaves_no_temp_files(tmp_path):
    uri = str(tmp_path / "f.bin")
    for _ in range(3):
        storage.write_bytes(uri, os.urandom(100))
    assert os.listdir(tmp_path) == ["f.bin"]


def test_missing_file_error_names_uri(root):
    with pytest.raises(storage.StorageError, match="missing.bin"):
        storage.read_bytes(storage.join(root, "missing.bin"))


def test_missing_bucket_is_one_clear_error(s3_server):
    with pytest.raises(storage.StorageError) as err:
        storage.write_bytes("s3://no-such-bucket-cvray/x.bin", b"1")
    assert "s3://no-such-bucket-cvray/x.bin" in str(err.value)
    assert "does not exist" in str(err.value)


def test_unreachable_endpoint_is_one_clear_error(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed port: nothing listens
    opts = storage.S3Options(endpoint_url=f"http://127.0.0.1:{port}", access_key_id="a", secret_access_key="b")
    with pytest.raises(storage.StorageError) as err:
        storage.read_bytes("s3://bucket/key.bin", opts)
    assert "s3://bucket/key.bin" in str(err.value)
    assert "unreachable" in str(err.value) or "does not exist" in str(err.value)


def test_bad_uri_scheme():
    with pytest.raises(storage.StorageError, match="unsupported URI scheme"):
        storage.resolve("gs://bucket/x")


def test_s3_options_repr_hides_credentials():
    o = storage.S3Options(access_key_id="AKIA", secret_access_key="topsecret")
    assert "topsecret" not in repr(o) and "AKIA" not in repr(o)


def test_duckdb_reads_parquet_written_by_us(tmp_path):
    duckdb = pytest.importorskip("duckdb", reason="duckdb (a dev extra) is not installed: "
                                 "pip install -e '.[dev]'")
    storage.write_parquet(pa.table({"a": [1, 2, 3]}), str(tmp_path / "t" / "p.parquet"))
    total = duckdb.sql(f"select sum(a) from read_parquet('{tmp_path}/t/*.parquet')").fetchall()[0][0]
    assert total == 6


def test_bad_credentials_are_one_clear_error(tmp_path):
    """A second moto_server with authentication on: unknown keys are refused."""
    import shutil
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    exe = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
                break
            except Exception:
                time.sleep(0.2)
        opts = storage.S3Options(endpoint_url=f"http://127.0.0.1:{port}", access_key_id="AKIAWRONG",
                                 secret_access_key="wrong")
        with pytest.raises(storage.StorageError) as err:
            storage.write_bytes("s3://somebucket/x.bin", b"1", opts)
        assert "s3://somebucket/x.bin" in str(err.value)
        assert "access denied" in str(err.value)
        assert "wrong" not in str(err.value)  # the secret never appears
    finally:
        proc.terminate()
        proc.wait(timeout=10)
