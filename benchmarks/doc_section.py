"""The benchmarks' one writer of docs/benchmarks.md: replace a section (its heading line up to the
next heading of any level) or append it at the end."""
from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(heading: str, text: str, doc: Path = DOC) -> None:
    """Put ``text`` (which starts with ``heading``) in place of the section ``heading``."""
    old = doc.read_text() if doc.exists() else "# Benchmarks\n"
    pat = re.compile(re.escape(heading) + r".*?(?=\n##+ |\Z)", re.S)
    new = pat.sub(lambda _: text.rstrip() + "\n", old) if heading in old else old.rstrip() + "\n\n" + text
    doc.write_text(new)
