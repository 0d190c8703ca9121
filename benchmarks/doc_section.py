"""The benchmarks' shared helpers: the one writer of docs/benchmarks.md (replace a section -- its
heading line up to the next heading of any level -- or append it at the end) and the one runner of
a ``cvray ... --json`` command as a user runs it."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"


def cvray(*args: str) -> tuple[dict, float]:
    """``cvray ARGS --json`` in its own process: (its JSON summary, wall seconds incl. start-up)."""
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "cvray.cli.main", *args, "--json"], capture_output=True, text=True,
                       cwd=REPO)
    if p.returncode:
        raise SystemExit(f"cvray {' '.join(args[:2])} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout), time.time() - t0


def write_section(heading: str, text: str, doc: Path = DOC) -> None:
    """Put ``text`` (which starts with ``heading``) in place of the section ``heading``."""
    old = doc.read_text() if doc.exists() else "# Benchmarks\n"
    pat = re.compile(re.escape(heading) + r".*?(?=\n##+ |\Z)", re.S)
    new = pat.sub(lambda _: text.rstrip() + "\n", old) if heading in old else old.rstrip() + "\n\n" + text
    doc.write_text(new)
