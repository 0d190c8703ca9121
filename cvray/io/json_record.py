"""A JSON record a run leaves for later runs (``calibrator.json``, ``policy.json``,
``drift_reference.json``), named by the file or by the run folder that holds it."""
from __future__ import annotations

from typing import Any

from cvray.io import storage

__all__ = ["read_record", "resolve_record_uri"]


def resolve_record_uri(spec: str, filename: str) -> str:
    """``spec`` is the file itself (any ``.json``) or a run folder/URI holding ``filename``."""
    spec = str(spec)
    return spec if spec.lower().endswith(".json") else storage.join(spec.rstrip("/"), filename)


def read_record(spec: str, filename: str, *, what: str, fmt: str, hint: str) -> tuple[str, dict[str, Any]]:
    """``(uri, record)``; ``ValueError`` naming the file when it is missing (``hint`` says what to
    give instead), not JSON, or not of format ``fmt`` (``what``: the record, in words)."""
    uri = resolve_record_uri(spec, filename)
    if not storage.exists(uri):
        raise ValueError(f"{spec}: no {what} ({uri} is missing); {hint}")
    try:
        rec = storage.read_json(uri)
    except Exception as exc:  # noqa: BLE001 - unreadable JSON: one line naming the file
        raise ValueError(f"{uri}: not a {what} JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(rec, dict) or rec.get("format") != fmt:
        raise ValueError(f"{uri}: not a cvray {what} (expected format {fmt!r})")
    return uri, rec
