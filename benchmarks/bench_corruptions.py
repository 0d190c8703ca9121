"""Time per image of cvray's corruptions vs the imagecorruptions reference (through the shim).

640x480 RGB natural-ish image, every corruption at severities 1..5, a few repetitions each
(the reference glass blur, ~20 s a call, runs once per severity). Prints a table with the time per
image (mean over the 5 severities) and the ratio per corruption, and the ratio over the 15
benchmark corruptions x 5 severities in total (target >= 10x), then writes the section
``## Corruptions (benchmarks/bench_corruptions.py)`` of docs/benchmarks.md (unless --no-write).

    taskset -c 1 .venv/bin/python benchmarks/bench_corruptions.py [--quick] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cvray.robustness import corruptions as C  # noqa: E402
from cvray.robustness.reference import reference_corrupt  # noqa: E402
from tests.test_robustness_corruptions import natural  # noqa: E402  (the tests' image, one definition)

HEADING = "## Corruptions (benchmarks/bench_corruptions.py)"
H, W = 480, 640


def _time_per_image(fn, reps: int) -> float:
    """Mean seconds per call over severities 1..5, each severity the median of ``reps`` calls."""
    per_sev = []
    for severity in C.SEVERITIES:
        times = []
        for rep in range(reps):
            t0 = time.perf_counter()
            fn(severity, rep)
            times.append(time.perf_counter() - t0)
        per_sev.append(float(np.median(times)))
    return float(np.mean(per_sev))


def measure(img: np.ndarray, reps: int, ref_reps: int, glass_ref_reps: int) -> list[dict]:
    rows = []
    for name in C.BENCHMARK + C.HOLDOUT + C.EXTRAS:
        C.corrupt(img, name, 1, C.corruption_rng(0, 0, name, 1))  # warm caches (frost textures)
        mine = _time_per_image(
            lambda s, rep, n=name: C.corrupt(img, n, s, C.corruption_rng(rep, 0, n, s)), reps)
        ref = None
        if name not in C.EXTRAS:
            n_ref = glass_ref_reps if name == "glass_blur" else ref_reps
            ref = _time_per_image(lambda s, rep, n=name: reference_corrupt(img, n, s, rep), n_ref)
        rows.append({"name": name, "family": C.family(name), "ours": mine, "ref": ref})
        ratio = f"{ref / mine:8.1f}x" if ref else "       -"
        print(f"{name:18s} ours {mine * 1e3:9.1f} ms   ref {'-' if ref is None else f'{ref * 1e3:9.1f}'} ms  {ratio}",
              flush=True)
    return rows


def _fmt_ms(sec: float | None) -> str:
    return "-" if sec is None else f"{sec * 1e3:,.1f}"


def table(rows: list[dict]) -> list[str]:
    lines = ["| corruption | family | ours ms/image | reference ms/image | ratio |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r['ref'] / r['ours']:.1f}x" if r["ref"] else "-"
        lines.append(f"| {r['name']} | {r['family']} | {_fmt_ms(r['ours'])} | {_fmt_ms(r['ref'])} | {ratio} |")
    bench = [r for r in rows if r["name"] in C.BENCHMARK]
    ours_t, ref_t = sum(r["ours"] for r in bench), sum(r["ref"] for r in bench)
    lines.append(f"| **15 benchmark x 5 severities, per image** | | **{_fmt_ms(ours_t / len(bench))}** | "
                 f"**{_fmt_ms(ref_t / len(bench))}** | **{ref_t / ours_t:.1f}x** |")
    no_glass = [r for r in bench if r["name"] != "glass_blur"]
    o2, r2 = sum(r["ours"] for r in no_glass), sum(r["ref"] for r in no_glass)
    lines.append(f"| 14 without glass_blur, per image | | {_fmt_ms(o2 / len(no_glass))} | "
                 f"{_fmt_ms(r2 / len(no_glass))} | {r2 / o2:.1f}x |")
    return lines


def machine() -> str:
    date = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import cv2
    import scipy
    return (f"{date}; {platform.machine()}, {platform.processor() or platform.platform()}, "
            f"{cpus} core(s) usable (of {os.cpu_count()}); Python {platform.python_version()}, "
            f"numpy {np.__version__}, scipy {scipy.__version__}, OpenCV {cv2.__version__}")


def section(rows: list[dict], args: argparse.Namespace) -> str:
    bench = [r for r in rows if r["name"] in C.BENCHMARK]
    ratio = sum(r["ref"] for r in bench) / sum(r["ours"] for r in bench)
    glass = next(r for r in rows if r["name"] == "glass_blur")
    body = [
        HEADING, "",
        f"{machine()}.", "",
        f"Time per {W}x{H} RGB image (mean over severities 1-5 of the median of {args.reps} call(s); "
        f"reference `imagecorruptions` 1.1.2 through `cvray/robustness/reference.py`, "
        f"{args.ref_reps} call(s), glass blur {args.glass_ref_reps}). Whole 15-corruption x "
        f"5-severity set: **{ratio:.1f}x** faster per image (target >= 10x); the reference's "
        f"per-pixel Python glass blur ({glass['ref']:.1f} s an image here, "
        f"{glass['ref'] / glass['ours']:.0f}x ours) is most of it, see the last row for the rest. "
        "Outputs: deterministic ones identical to the reference (brightness, saturate within 1 grey "
        "level), random ones identical given the reference's draws (elastic within 1), "
        "see tests/test_robustness_corruptions.py.", "",
        *table(rows), "",
    ]
    return "\n".join(body)


def write_section(path: Path, text: str) -> None:
    """Replace the section (up to the next heading of any level) or append it at the end."""
    old = path.read_text() if path.exists() else ""
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip("\n") == HEADING), None)
    if start is None:
        sep = "" if not old or old.endswith("\n\n") else ("\n" if old.endswith("\n") else "\n\n")
        path.write_text(old + sep + text)
        return
    end = next((j for j in range(start + 1, len(lines)) if re.match(r"#{1,6} ", lines[j])), len(lines))
    tail = lines[end:]
    path.write_text("".join(lines[:start]) + text + ("\n" if tail else "") + "".join(tail))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 repetition everywhere")
    ap.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    ap.add_argument("--reps", type=int, default=5, help="our calls per severity")
    ap.add_argument("--ref-reps", type=int, default=2, help="reference calls per severity")
    ap.add_argument("--glass-ref-reps", type=int, default=1, help="reference glass blur calls per severity")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.ref_reps, args.glass_ref_reps = 2, 1, 1
    img = natural(H, W)
    rows = measure(img, args.reps, args.ref_reps, args.glass_ref_reps)
    text = section(rows, args)
    print()
    print(text)
    if not args.no_write:
        write_section(REPO / "docs" / "benchmarks.md", text)
        print(f"wrote {HEADING!r} into docs/benchmarks.md")


if __name__ == "__main__":
    main()
