"""Tracking-only speed and accuracy: cvray's tracker vs Roboflow ``trackers`` (ByteTrack, OC-SORT).

    .venv/bin/python benchmarks/bench_track.py [--frames 200] [--write docs/benchmarks.md]

Every tracker gets the same detections (inputs built before timing starts) and is timed on its
``update`` calls only. Scenes are synthetic: N objects per frame (10 / 50 / 200) moving with
noisy constant velocity in a 1920x1080 view, detections with jitter, drops, low-score true
detections and false positives (the same noise model as ``cvray.data.synth_mot``), plus the
rendered synthetic MOT sequences of the test suite. Accuracy is HOTA / IDF1 / MOTA from cvray's
metrics (motmetrics + trackeval), identical for all trackers.
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

import numpy as np

import cvray.config  # noqa: F401
from cvray.track.config import TrackConfig
from cvray.track.metrics import combine, evaluate_sequence, summarize
from cvray.track.records import Detections, tracks_to_mot
from cvray.track.tracker import Tracker

W, H, FPS = 1920, 1080, 30.0


def make_scene(n_objects: int, n_frames: int, seed: int):
    """gt rows and det rows (MOT format) of a synthetic scene with detector noise."""
    rng = np.random.default_rng([seed, n_objects])
    size = rng.uniform(30, 90, (n_objects, 1)) * np.array([[0.5, 1.0]])
    pos = rng.uniform([0, 0], [W, H], (n_objects, 2))
    vel = rng.normal(0, 4, (n_objects, 2))
    gt, det = [], []
    for f in range(1, n_frames + 1):
        vel += rng.normal(0, 0.3, vel.shape)
        pos += vel
        for k in range(2):  # bounce off the walls
            hit = (pos[:, k] < 0) | (pos[:, k] > (W, H)[k])
            vel[hit, k] *= -1
            pos[:, k] = np.clip(pos[:, k], 0, (W, H)[k])
        for i in range(n_objects):
            x, y = pos[i] - size[i] / 2
            gt.append([f, i + 1, x, y, *size[i], 1, 1, 1, -1])
            if rng.random() < 0.1:                               # dropped
                continue
            j = rng.normal(0, 0.05, 4) * np.r_[size[i], size[i]]
            score = rng.uniform(0.1, 0.5) if rng.random() < 0.2 else rng.uniform(0.6, 1.0)
            det.append([f, -1, x + j[0], y + j[1], size[i][0] + j[2], size[i][1] + j[3], score, -1, -1, -1])
        for _ in range(rng.poisson(0.05 * n_objects)):          # false positives
            bw, bh = rng.uniform(30, 90), rng.uniform(30, 90)
            det.append([f, -1, rng.uniform(0, W - bw), rng.uniform(0, H - bh), bw, bh,
                        rng.uniform(0.1, 0.7), -1, -1, -1])
    return np.asarray(gt, float), np.asarray(det, float)


def frames_of(det: np.ndarray, n_frames: int) -> list[np.ndarray]:
    return [det[det[:, 0] == f] for f in range(1, n_frames + 1)]


def run_cvray(frames, fps):
    inputs = [Detections.from_mot(r) for r in frames]
    tr = Tracker(TrackConfig(), frame_rate=fps)
    t0 = time.perf_counter()
    # what `cvray track` does with a det file: rank scores against the whole sequence (timed too)
    tr.fit_scores(np.concatenate([d.scores for d in inputs]))
    outs = [tr.update(d) for d in inputs]
    sec = time.perf_counter() - t0
    return tracks_to_mot(outs), sec


def run_peer(cls, frames, fps):
    import supervision as sv

    inputs = []
    for r in frames:
        xyxy = np.c_[r[:, 2:4], r[:, 2:4] + r[:, 4:6]].astype(np.float32)
        inputs.append(sv.Detections(xyxy=xyxy.reshape(-1, 4), confidence=r[:, 6].astype(np.float32),
                                    class_id=np.zeros(len(r), int)))
    tr = cls(frame_rate=fps)
    t0 = time.perf_counter()
    outs = [tr.update(d) for d in inputs]
    sec = time.perf_counter() - t0
    rows = []
    for f, o in enumerate(outs, start=1):
        for b, tid in zip(o.xyxy, o.tracker_id if o.tracker_id is not None else []):
            if tid >= 0:
                rows.append([f, tid + 1, b[0], b[1], b[2] - b[0], b[3] - b[1], 1, -1, -1, -1])
    return np.asarray(rows, float).reshape(-1, 10), sec


def trackers_under_test():
    from trackers import ByteTrackTracker, OCSORTTracker

    return [("cvray", None), ("trackers ByteTrack", ByteTrackTracker), ("trackers OC-SORT", OCSORTTracker)]


def evaluate(gt_list, pred_list):
    return summarize(combine([evaluate_sequence(g, p) for g, p in zip(gt_list, pred_list)]))


REPEATS = 7


def timed_all(frames, fps) -> dict:
    """``{name: (pred, best seconds)}``: the trackers take turns, ``REPEATS`` rounds, best run of
    each (the machine is shared: interleaving exposes all trackers to the same disturbances, the
    minimum is the least disturbed run)."""
    out: dict = {}
    for _ in range(REPEATS):
        for name, cls in trackers_under_test():
            pred, sec = run_cvray(frames, fps) if cls is None else run_peer(cls, frames, fps)
            best = out.get(name, (None, float("inf")))[1]
            out[name] = (pred, min(best, sec))
    return out


def bench_density(n_objects, n_frames, seed=0):
    gt, det = make_scene(n_objects, n_frames, seed)
    frames = frames_of(det, n_frames)
    res = {}
    for name, (pred, sec) in timed_all(frames, FPS).items():
        m = evaluate([gt], [pred])
        res[name] = {"fps": n_frames / sec, "HOTA": m["HOTA"], "IDF1": m["IDF1"], "MOTA": m["MOTA"]}
    return res


def bench_synth_mot():
    from cvray.data.synth_mot import DetNoise, make_mot
    from cvray.track.io import read_mot, read_seqinfo

    noise = DetNoise(drop_rate=0.1, min_visibility=0.1, jitter=0.05, fp_per_frame=0.3, low_score_rate=0.2)
    info = make_mot(tempfile.mkdtemp(), n_videos=4, seed=1, n_frames=60, n_objects=6, det_noise=noise)
    gts, preds, secs, n = [], {}, {}, 0
    for s in info["sequences"]:
        fr = read_seqinfo(s["seqinfo"]).frame_rate
        gts.append(read_mot(s["gt"]))
        frames = frames_of(read_mot(s["det"]), s["n_frames"])
        n += len(frames)
        for name, (pred, sec) in timed_all(frames, fr).items():
            preds.setdefault(name, []).append(pred)
            secs[name] = secs.get(name, 0.0) + sec
    return {name: {"fps": n / secs[name], **{k: v for k, v in evaluate(gts, preds[name]).items()
                                              if k in ("HOTA", "IDF1", "MOTA")}} for name in preds}


def markdown(results: dict, n_frames: int) -> str:
    import trackers

    lines = [
        "## Tracking",
        "",
        f"`benchmarks/bench_track.py`, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (a shared VM: "
        f"ratios from one run are the comparable numbers), Python {platform.python_version()}, "
        f"Roboflow trackers {getattr(trackers, '__version__', '2.6.1')}.",
        "Tracking only (detections prepared before timing; `update` calls timed; the trackers take "
        f"turns for {REPEATS} rounds and each one's best run counts), one process, default settings "
        "of every tracker. "
        f"Synthetic scenes: {n_frames} frames at 1920x1080, 10% dropped, 20% low-score true detections, "
        "5% false positives per object; \"synth MOT\" = the 4 rendered 128 px sequences of the test "
        "suite (occlusion, leaving/re-entering the view). HOTA/IDF1/MOTA by cvray's metrics.",
        "",
        "| scene | tracker | frames/s | speed vs cvray | HOTA | IDF1 | MOTA |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for scene, res in results.items():
        base = res["cvray"]["fps"]
        for name, r in res.items():
            lines.append(f"| {scene} | {name} | {r['fps']:.0f} | {r['fps'] / base:.2f}x | {r['HOTA']:.1f} | "
                         f"{r['IDF1']:.1f} | {r['MOTA']:.1f} |")
    lines += ["", "Against the target (>= 3x the speed of trackers' ByteTrack at >= its HOTA, at 10, 50 "
              "and 200 objects per frame):", ""]
    for scene, res in results.items():
        ours, peer = res["cvray"], res["trackers ByteTrack"]
        speed = ours["fps"] / peer["fps"]
        dh = ours["HOTA"] - peer["HOTA"]
        ok = "met" if speed >= 3 and dh >= -0.05 else "not met"
        if "objects/frame" not in scene:
            ok = f"{ok} (extra scene, not one of the target densities)"
        lines.append(f"- {scene}: {speed:.1f}x the speed, HOTA {dh:+.1f} -> {ok}")
    lines += ["", "OC-SORT runs with its package defaults (not tuned for these scenes). The synthetic MOT "
              "sequences have 3.5 detections per frame on average: there cvray's per-frame cost is its "
              "fixed set of numpy calls (~170 us on this machine), while ByteTrack's Python "
              "per-object cost is small, so the ratio is lowest there. Between runs of the same code on this "
              "VM the 10-objects ratio moved between 3.1x and 3.7x (2026-11-27): rerun before quoting it."]
    return "\n".join(lines) + "\n"


def write_section(path: str, text: str) -> None:
    old = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    pattern = re.compile(r"^## Tracking\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    with open(path, "w") as f:
        f.write(new)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--densities", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--write", default=None, help="markdown file to (re)write the Tracking section in")
    args = ap.parse_args(argv)
    results = {f"{n} objects/frame": bench_density(n, args.frames) for n in args.densities}
    results["synth MOT (6 objects, 128 px)"] = bench_synth_mot()
    text = markdown(results, args.frames)
    sys.stdout.write(text)
    if args.write:
        write_section(args.write, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
