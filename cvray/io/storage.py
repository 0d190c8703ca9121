"""One URI layer for local paths and ``s3://bucket/prefix`` (pyarrow filesystems).

Endpoint and credentials come from the standard ``AWS_*`` variables (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``)
or from an explicit :class:`S3Options`. Writes are atomic: a local file is written beside its
target and renamed into place; an S3 object only becomes visible when its upload completes. So a
reader never sees half a file, and writing the same URI twice replaces it (idempotent retries).

Example::

    >>> from cvray.io import storage
    >>> storage.write_bytes("/tmp/cvray-doc/a.txt", b"hi")
    >>> storage.read_bytes("/tmp/cvray-doc/a.txt")
    b'hi'
"""
from __future__ import annotations

import io
import json
import os
import posixpath
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

__all__ = [
    "S3Options",
    "StorageError",
    "exists",
    "is_s3",
    "join",
    "list_files",
    "local_copy",
    "read_bytes",
    "read_json",
    "read_parquet",
    "read_table_dir",
    "resolve",
    "rm_tree",
    "write_bytes",
    "write_json",
    "write_parquet",
]


class StorageError(RuntimeError):
    """A storage operation failed; the message names the URI and the reason."""


@dataclass(frozen=True)
class S3Options:
    """Explicit S3 settings; anything left ``None`` falls back to the ``AWS_*`` environment."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    def __repr__(self) -> str:  # never show credentials
        return f"S3Options(endpoint_url={self.endpoint_url!r}, region={self.region!r})"


def apply_to_environ(options: S3Options, environ: dict | None = None) -> dict[str, str]:
    """Export config-given S3 settings as the standard ``AWS_*`` variables.

    Storage has no process-global state: settings travel as environment variables, which the
    CLI also hands to Ray workers through ``runtime_env`` so every process resolves URIs alike.
    Returns the variables that were set.
    """
    env = os.environ if environ is None else environ
    pairs = {
        "AWS_ENDPOINT_URL": options.endpoint_url,
        "AWS_DEFAULT_REGION": options.region,
        "AWS_ACCESS_KEY_ID": options.access_key_id,
        "AWS_SECRET_ACCESS_KEY": options.secret_access_key,
        "AWS_SESSION_TOKEN": options.session_token,
    }
    set_ = {k: v for k, v in pairs.items() if v}
    env.update(set_)
    return set_


def is_s3(uri: str) -> bool:
    return str(uri).startswith("s3://")


def join(uri: str, *parts: str) -> str:
    """Join path parts onto a URI (``posixpath`` for S3, ``os.path`` locally)."""
    uri = str(uri)
    if is_s3(uri):
        return "s3://" + posixpath.join(uri[5:].rstrip("/"), *[p.strip("/") for p in parts])
    return os.path.join(uri, *parts)


def _s3_filesystem(options: S3Options | None) -> pafs.S3FileSystem:
    o = options or S3Options()
    env = os.environ
    endpoint = o.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, Any] = {
        "region": o.region or env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1",
        "connect_timeout": 5,
        "request_timeout": 30,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    }
    access = o.access_key_id or env.get("AWS_ACCESS_KEY_ID")
    secret = o.secret_access_key or env.get("AWS_SECRET_ACCESS_KEY")
    if access and secret:
        kwargs["access_key"] = access
        kwargs["secret_key"] = secret
        token = o.session_token or env.get("AWS_SESSION_TOKEN")
        if token:
            kwargs["session_token"] = token
    if endpoint:
        scheme = "https"
        if "://" in endpoint:
            scheme, endpoint = endpoint.split("://", 1)
        kwargs["endpoint_override"] = endpoint.rstrip("/")
        kwargs["scheme"] = scheme
        kwargs["force_virtual_addressing"] = False
    return pafs.S3FileSystem(**kwargs)


def resolve(uri: str, options: S3Options | None = None) -> tuple[pafs.FileSystem, str]:
    """Return ``(filesystem, path)`` for a local path or an ``s3://bucket/key`` URI."""
    uri = str(uri)
    if is_s3(uri):
        path = uri[5:].rstrip("/")
        if not path or path.startswith("/"):
            raise StorageError(f"{uri}: not a valid S3 URI (expected s3://bucket/prefix)")
        return _s3_filesystem(options), path
    if "://" in uri and not uri.startswith("file://"):
        raise StorageError(f"{uri}: unsupported URI scheme (use a local path or s3://bucket/prefix)")
    if uri.startswith("file://"):
        uri = uri[7:]
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(uri))


def _explain(uri: str, exc: BaseException) -> StorageError:
    text = str(exc)
    low = text.lower().replace("_", " ")
    if any(k in low for k in ("access denied", "accessdenied", "invalidaccesskeyid", "signaturedoesnotmatch",
                              "forbidden", "invalid access key")):
        why = "access denied (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
    elif "nosuchbucket" in low or "bucket does not exist" in low or ("does not exist" in low and is_s3(uri)):
        why = "the bucket does not exist"
    elif any(k in low for k in ("curl", "connect", "timeout", "timed out", "resolve host", "endpoint url")):
        why = "the S3 endpoint is unreachable (check AWS_ENDPOINT_URL and the network)"
    elif isinstance(exc, FileNotFoundError) or "not found" in low or "no such file" in low or "nosuchkey" in low:
        why = "no such file"
    else:
        why = text.splitlines()[0] if text else type(exc).__name__
    err = StorageError(f"{uri}: {why}")
    err.__cause__ = exc
    return err


def _check_bucket(fs: pafs.FileSystem, uri: str, path: str) -> None:
    if not is_s3(uri):
        return
    bucket = path.split("/", 1)[0]
    try:
        info = fs.get_file_info(bucket)
    except OSError as exc:
        raise _explain(uri, exc) from exc
    if info.type == pafs.FileType.NotFound:
        raise StorageError(f"{uri}: the bucket '{bucket}' does not exist")


def write_bytes(uri: str, data: bytes, options: S3Options | None = None) -> None:
    """Atomically write ``data`` to ``uri`` (replacing any previous object)."""
    fs, path = resolve(uri, options)
    try:
        if is_s3(uri):
            _check_bucket(fs, uri, path)
            _s3_put(uri, path, data, options)
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except StorageError:
        raise
    except OSError as exc:
        raise _explain(uri, exc) from exc


def _s3_put(uri: str, path: str, data: bytes, options: S3Options | None) -> None:
    """One PUT request: the object appears whole or not at all.

    pyarrow's output streams always use multipart uploads, which some S3-compatible servers
    (moto among them) answer in a form pyarrow rejects; a single PUT is both simpler and atomic.
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    o = options or S3Options()
    env = os.environ
    client = boto3.client(
        "s3",
        endpoint_url=o.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
        region_name=o.region or env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1",
        aws_access_key_id=o.access_key_id, aws_secret_access_key=o.secret_access_key,
        aws_session_token=o.session_token,
        config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3}),
    )
    bucket, _, key = path.partition("/")
    try:
        client.put_object(Bucket=bucket, Key=key, Body=data)
    except (BotoCoreError, ClientError) as exc:
        raise _explain(uri, exc) from exc


def read_bytes(uri: str, options: S3Options | None = None) -> bytes:
    fs, path = resolve(uri, options)
    try:
        with fs.open_input_stream(path) as f:
            return f.read()
    except OSError as exc:
        if is_s3(uri):
            _check_bucket(fs, uri, path)
        raise _explain(uri, exc) from exc


def exists(uri: str, options: S3Options | None = None) -> bool:
    fs, path = resolve(uri, options)
    try:
        return fs.get_file_info(path).type != pafs.FileType.NotFound
    except OSError as exc:
        raise _explain(uri, exc) from exc


def list_files(uri: str, suffix: str = "", recursive: bool = True,
               options: S3Options | None = None) -> list[str]:
    """Sorted URIs of the files under ``uri`` (empty when it does not exist)."""
    fs, path = resolve(uri, options)
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
    except OSError as exc:
        raise _explain(uri, exc) from exc
    prefix = "s3://" if is_s3(uri) else ""
    return sorted(
        prefix + i.path for i in infos
        if i.type == pafs.FileType.File and i.path.endswith(suffix) and ".tmp-" not in i.base_name
    )


def list_dirs(uri: str, options: S3Options | None = None) -> list[str]:
    """Names (not URIs) of the immediate sub-folders of ``uri``."""
    fs, path = resolve(uri, options)
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=False, allow_not_found=True))
    except OSError as exc:
        raise _explain(uri, exc) from exc
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)


def rm_tree(uri: str, options: S3Options | None = None) -> None:
    fs, path = resolve(uri, options)
    try:
        if fs.get_file_info(path).type != pafs.FileType.NotFound:
            fs.delete_dir(path)
    except OSError as exc:
        raise _explain(uri, exc) from exc


def remove_file(uri: str, options: S3Options | None = None) -> bool:
    """Delete the file at ``uri`` if there is one; True when something was deleted."""
    fs, path = resolve(uri, options)
    try:
        if fs.get_file_info(path).type != pafs.FileType.File:
            return False
        fs.delete_file(path)
        return True
    except OSError as exc:
        raise _explain(uri, exc) from exc


def write_json(uri: str, obj: Any, options: S3Options | None = None) -> None:
    write_bytes(uri, json.dumps(obj, indent=2, sort_keys=True, default=str).encode(), options)


def read_json(uri: str, options: S3Options | None = None, *, error: type[Exception] | None = None,
              expect: type | None = None, what: str = "") -> Any:
    """Parse the JSON at ``uri``. Invalid JSON (or, with ``expect``, a top level of another type)
    raises ``error`` (default :class:`StorageError`) naming the file; ``what`` says what the top
    level should be."""
    data = read_bytes(uri, options)
    error = error or StorageError
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise error(f"{uri}: not valid JSON ({exc})") from exc
    if expect is not None and not isinstance(value, expect):
        raise error(f"{uri}: {what or f'top level must be a JSON {expect.__name__}'}")
    return value


def write_parquet(table: pa.Table, uri: str, options: S3Options | None = None) -> None:
    """Atomically write one Parquet file (serialised in memory, then one atomic write)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    write_bytes(uri, buf.getvalue(), options)


def read_parquet(uri: str, options: S3Options | None = None) -> pa.Table:
    """The table in one Parquet file; :class:`StorageError` "URI: not a Parquet file" when it is not."""
    data = read_bytes(uri, options)
    try:
        return pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:  # ArrowInvalid: "... input source '<Buffer>' ..."
        why = str(exc).split("': ", 1)[-1].strip() if "<Buffer>" in str(exc) else str(exc).strip()
        raise StorageError(f"{uri}: not a Parquet file ({why.splitlines()[0] if why else type(exc).__name__})") from exc


def read_table_dir(uri: str, options: S3Options | None = None) -> pa.Table:
    """Concatenate every ``*.parquet`` part under a folder (schemas unified)."""
    parts = list_files(uri, suffix=".parquet", options=options)
    if not parts:
        raise StorageError(f"{uri}: no Parquet parts found")
    tables = [read_parquet(p, options) for p in parts]
    try:
        return pa.concat_tables(tables, promote_options="default")
    except pa.ArrowException as exc:
        raise StorageError(f"{uri}: its Parquet parts have incompatible schemas ({str(exc).splitlines()[0]})") from exc


def local_copy(uri: str, dest_dir: str, options: S3Options | None = None) -> str:
    """Return a local path for ``uri``: itself when local, else a download into ``dest_dir``."""
    if not is_s3(uri):
        return resolve(uri)[1]
    target = os.path.join(dest_dir, posixpath.basename(uri.rstrip("/")))
    with open(target, "wb") as f:
        f.write(read_bytes(uri, options))
    return target


def upload_tree(local_dir: str, uri: str, options: S3Options | None = None) -> int:
    """Copy a local folder to a URI (local or S3); returns the number of files copied."""
    n = 0
    root = Path(local_dir)
    for p in sorted(root.rglob("*")):
        if p.is_file():
            write_bytes(join(uri, p.relative_to(root).as_posix()), p.read_bytes(), options)
            n += 1
    return n


def iter_lines(uri: str, options: S3Options | None = None) -> Iterator[str]:
    yield from read_bytes(uri, options).decode().splitlines()
