"""The table contract: declared, versioned schemas only; docs/results.md matches them; one issue
factory and one rule catalogue for every stage."""
from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from cvray.runs import start_run
from cvray.runs.issues import RULES, issue, issues_to_table
from cvray.runs.tables import (RUN_TABLES, TableContractError, declare, declared_schema,
                               table_identity)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def test_write_table_refuses_a_table_without_schema_metadata(tmp_path):
    with start_run("unit", root=str(tmp_path), seed=0, argv=[]) as run:
        with pytest.raises(TableContractError, match="scores.*cvray.table"):
            run.write_table("scores", pa.table({"x": [1.0]}))
        only_name = pa.table({"x": [1.0]}).replace_schema_metadata({"cvray.table": "scores"})
        with pytest.raises(TableContractError):
            run.write_table("scores", only_name)
        declared = pa.table({"x": [1.0]}).cast(declare("scores", [pa.field("x", pa.float64())]))
        with pytest.raises(TableContractError, match="schema of table 'scores'"):
            run.write_table("other", declared)
        run.write_table("scores", declared)
    assert run.read_table("scores").column("x").to_pylist() == [1.0]


def test_every_declared_schema_names_itself():
    for name in RUN_TABLES:
        assert table_identity(declared_schema(name))[0] == name, name
        assert table_identity(declared_schema(name))[1], name


def _doc_sections() -> dict[str, tuple[str, str]]:
    """table name -> (version, section text) for every ``### name (vN)`` heading."""
    text = DOCS.read_text()
    heads = list(re.finditer(r"^#{3,4} (\w+) \(v(\d+)\)", text, flags=re.M))
    out = {}
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        nxt = re.search(r"^#{1,4} ", text[m.end():end], flags=re.M)
        out[m.group(1)] = (m.group(2), text[m.end(): m.end() + nxt.start() if nxt else end])
    return out


def _doc_columns(section: str) -> dict[str, str | None]:
    """Columns of a section: its ``| column | type |`` rows, else its backticked name list."""
    cols: dict[str, str | None] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2 and cells[0] not in ("column", "---") \
                and not set(cells[0]) <= {"-"}:
            for name in cells[0].split(","):
                cols[name.strip()] = cells[1]
    if not cols:
        for span in re.findall(r"`([^`]+)`", section):
            if "," in span:
                cols.update({n.strip(): None for n in span.split(",")})
    return cols


_TYPE_NAMES = {"double": "float64", "bool": "bool"}


def test_results_md_lists_every_declared_table_with_its_columns():
    sections = _doc_sections()
    for name in RUN_TABLES:
        schema = declared_schema(name)
        assert name in sections, f"docs/results.md has no '### {name} (vN)' section"
        version, section = sections[name]
        assert version == table_identity(schema)[1], f"{name}: docs say v{version}"
        cols = _doc_columns(section)
        assert set(cols) == set(schema.names), f"{name}: docs {sorted(cols)} vs schema {schema.names}"
        for f in schema:
            simple = _TYPE_NAMES.get(str(f.type), str(f.type))
            if cols[f.name] is not None and "<" not in simple:
                assert cols[f.name] == simple, f"{name}.{f.name}: docs {cols[f.name]}, schema {simple}"


def test_one_rule_catalogue_one_severity():
    assert RULES["image.unreadable"].severity == "error"
    row = issue("train", "image.unreadable", "a.jpg: cannot decode", file="a.jpg", image_id=3)
    assert row.severity == "error" and row.stage == "train" and row.image_id == 3
    with pytest.raises(KeyError, match="not.a.rule"):
        issue("train", "not.a.rule", "x")
    # a hand-built row of a catalogued rule still gets the catalogue's severity in the table
    t = issues_to_table([{"stage": "train", "rule": "image.unreadable", "severity": "warning",
                          "message": "x"}])
    assert t.column("severity").to_pylist() == ["error"]
    from cvray.validate.rules import RULES as VALIDATE_RULES

    assert all(VALIDATE_RULES[r] is RULES[r] for r in VALIDATE_RULES)
