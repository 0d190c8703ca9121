"""Validation + hashing throughput (images/s) vs a plain single-process loop over the same images.

Run by hand: ``.venv/bin/python benchmarks/bench_validate.py --images 2000 --size 256``.
Writes its section of docs/benchmarks.md (``## Dataset validation``), replacing an older one.

Measured side by side in one run, on the same JPEG files:

* ``decode``: read bytes + ``cv2.imdecode`` (full-resolution JPEG decode) - the yardstick;
* ``decode+phash``: the plain loop a user would write: full decode, then the pHash;
* ``phash only``: the hash on pre-decoded greyscale arrays (is hashing cheaper than decoding?);
* ``cvray local``: every rule + pHash + bucketing in one process (``validate_local``);
* ``cvray ray``: the Ray Data pipeline (``validate_ray``), all CPUs of this machine, warm start.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Dataset validation (cvray validate)"


def _rate(n: int, fn, repeat: int = 3) -> tuple[float, float]:
    """Best of ``repeat`` runs (the machine is shared: the minimum is the least disturbed)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best, best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    from cvray.data.synth import make_coco
    from cvray.validate.images import phash, phash_from_gray
    from cvray.validate.reference import validate_local

    tmp = tempfile.mkdtemp(prefix="cvray-bench-validate-")
    info = make_coco(tmp, args.images, seed=0, image_size=(args.size, args.size))
    files = sorted(str(p) for p in Path(info["images_dir"]).rglob("*.jpg"))
    n = len(files)
    blobs = [Path(f).read_bytes() for f in files]  # warm the page cache for every contender
    del blobs

    def decode():
        for f in files:
            cv2.imdecode(np.frombuffer(Path(f).read_bytes(), np.uint8), cv2.IMREAD_COLOR)

    def decode_hash():
        for f in files:
            phash(cv2.imdecode(np.frombuffer(Path(f).read_bytes(), np.uint8), cv2.IMREAD_COLOR)[..., ::-1])

    grays = [cv2.imdecode(np.frombuffer(Path(f).read_bytes(), np.uint8), cv2.IMREAD_GRAYSCALE)
             for f in files[:500]]

    def hash_only():
        for g in grays:
            phash_from_gray(g)

    rows = {}
    rows["decode (plain loop, cv2 full decode)"] = _rate(n, decode)
    rows["decode + pHash (plain loop)"] = _rate(n, decode_hash)
    rows["pHash only (pre-decoded grey)"] = _rate(len(grays), hash_only)
    result = {}

    def local():
        result["local"] = validate_local(info["annotations"], info["images_dir"])

    rows["cvray validate, local (all rules + pHash + leakage)"] = _rate(n, local)
    if not args.no_ray:
        import ray

        from cvray.validate.distributed import validate_ray

        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        validate_ray(info["annotations"], info["images_dir"])  # warm-up: worker start, imports
        rows[f"cvray validate, Ray Data ({int(ray.cluster_resources().get('CPU', 0))} CPUs, warm)"] = \
            _rate(n, lambda: result.__setitem__("ray", validate_ray(info["annotations"], info["images_dir"])[0]),
                  repeat=2)
        ray.shutdown()
        assert result["ray"].pairs == result["local"].pairs
    base = rows["decode (plain loop, cv2 full decode)"][0]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [SECTION, "",
             f"{dt.date.today().isoformat()}, {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs (load average {load:.1f} at start: the machine is shared), "
             f"Python {sys.version.split()[0]}; {n} synthetic JPEGs of {args.size}x{args.size} "
             f"(`benchmarks/bench_validate.py --images {args.images} --size {args.size}`).", "",
             "| contender (best of 3; Ray best of 2 after a warm-up) | images/s | seconds | ratio to plain decode |", "|---|---:|---:|---:|"]
    for name, (rate, secs) in rows.items():
        lines.append(f"| {name} | {rate:,.0f} | {secs:.2f} | {rate / base:.2f} |")
    hash_rate = rows["pHash only (pre-decoded grey)"][0]
    local_rate = rows["cvray validate, local (all rules + pHash + leakage)"][0]
    lines += ["", f"The pHash alone runs at {hash_rate / base:.1f}x the plain decode rate, so hashing "
              "keeps pace with JPEG decode (cvray also decodes at reduced DCT scale for the hash). "
              f"The full local rule pass (image header + EXIF + truncation checks, pHash, every "
              f"annotation rule with pycocotools mask areas, bucketing) runs at {local_rate / base:.2f}x "
              "the plain decode loop. The Ray row includes task scheduling, worker start-up and the "
              "band shuffle, a fixed cost of seconds that dominates on 2 shared cores; it pays off "
              "on clusters, S3 reads and large images. Timings vary with the load of this shared "
              "machine; compare ratios within one run only.", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        doc = REPO / "docs" / "benchmarks.md"
        old = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
        pat = re.compile(re.escape(SECTION) + r".*?(?=\n## |\Z)", re.S)
        new = pat.sub(text.rstrip() + "\n", old) if SECTION in old else old.rstrip() + "\n\n" + text
        doc.write_text(new)


if __name__ == "__main__":
    main()
