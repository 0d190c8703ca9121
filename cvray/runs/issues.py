"""The issues table: one row per problem found in the input (never a crash, never a silent drop)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

import pyarrow as pa

__all__ = ["ISSUE_SCHEMA", "ISSUES_SCHEMA_VERSION", "Issue", "issues_to_table", "SEVERITIES"]

ISSUES_SCHEMA_VERSION = 1
SEVERITIES = ("error", "warning", "info")

ISSUE_SCHEMA = pa.schema(
    [
        pa.field("stage", pa.string(), nullable=False),      # ingest, validate, predict, track ...
        pa.field("rule", pa.string(), nullable=False),       # e.g. image.unreadable
        pa.field("severity", pa.string(), nullable=False),   # error | warning | info
        pa.field("file", pa.string()),                       # file / URI the problem is in
        pa.field("image_id", pa.int64()),
        pa.field("annotation_id", pa.int64()),
        pa.field("message", pa.string(), nullable=False),
    ],
    metadata={"cvray.table": "issues", "cvray.schema_version": str(ISSUES_SCHEMA_VERSION)},
)


@dataclass(frozen=True)
class Issue:
    stage: str
    rule: str
    severity: str
    message: str
    file: str | None = None
    image_id: int | None = None
    annotation_id: int | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"issue severity must be one of {SEVERITIES}, got {self.severity!r}")


def issues_to_table(rows: Iterable[Issue | Mapping]) -> pa.Table:
    cols: dict[str, list] = {f.name: [] for f in ISSUE_SCHEMA}
    for r in rows:
        d = asdict(r) if isinstance(r, Issue) else dict(r)
        Issue(**{k: d.get(k) for k in cols})  # validate severity and required keys
        for k in cols:
            v = d.get(k)
            cols[k].append(int(v) if k in ("image_id", "annotation_id") and v is not None else v)
    return pa.table(cols, schema=ISSUE_SCHEMA)
