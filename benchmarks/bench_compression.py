"""Encode + decode throughput of cvray's video compression tiers (H.264 / H.265 by CRF, PyAV).

A 640x480 synthetic sequence (the tests' generator: textured panning background, two moving
shapes), each tier encoded and decoded in memory on one thread (the module's deterministic
settings), --reps times. Prints one row per tier: median encode and decode frames/s, bitrate, PSNR vs the input and
vs the codec's CRF-0 baseline. Encode time is encoder + muxer (RGB -> YUV before it not counted),
decode time demuxer + decoder + YUV -> RGB. Nothing is written.

    taskset -c 1 .venv/bin/python benchmarks/bench_compression.py [--frames 32] [--reps 3] [--preset medium]
        [--compression 'h264:0,18,23,28,35;h265:0,18,23,28,35']
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cvray.robustness import compression as C  # noqa: E402
from tests.test_robustness_compression import sequence  # noqa: E402  (one definition)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--preset", default="medium", choices=C.PRESETS)
    ap.add_argument("--reps", type=int, default=3, help="repetitions; times are the median")
    ap.add_argument("--compression", default="h264:0,18,23,28,35;h265:0,18,23,28,35")
    args = ap.parse_args(argv)
    seq = sequence(args.frames, args.height, args.width)
    tiers = C.parse_tiers(args.compression)
    print(f"{args.frames} frames {args.width}x{args.height}, preset {args.preset}, 1 thread")
    print(f"{'tier':12s} {'enc f/s':>8s} {'dec f/s':>8s} {'kbps':>9s} {'bpp':>6s} "
          f"{'PSNR':>6s} {'vs CRF0':>7s}")
    runs = [C.compress_tiers(seq, tiers, preset=args.preset) for _ in range(args.reps)]
    for i, r in enumerate(runs[0]):
        enc = statistics.median(run[i].encode_s for run in runs)
        dec = statistics.median(run[i].decode_s for run in runs)
        print(f"{r.tier.name:12s} {args.frames / enc:8.1f} {args.frames / dec:8.1f} "
              f"{r.bitrate_kbps:9.1f} {r.bits_per_pixel:6.3f} {r.psnr_db:6.2f} {r.psnr_vs_baseline:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
