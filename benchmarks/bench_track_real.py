"""cvray's tracker vs Roboflow ``trackers`` 2.6.1 on 16 real MOTChallenge sequences (public detections).

    .venv/bin/python benchmarks/bench_track_real.py [--data ../shared/refdata/mot-dev]
        [--write docs/benchmarks.md] [--json out.json] [--only cvray] [--set track.key=value ...]

Benchmarks (``../shared/refdata/mot-dev``, see its README):

* **MOT15 as shipped** -- 9 MOT15 sequences; 5 with the official ACF detections (raw scores
  -0.8 ... 139), 4 with SORT's Faster R-CNN detections (scores 0.5 ... 1);
* **MOT15 min-max** -- the same detections with scores min-max scaled to [0, 1] per sequence
  (what a user of another detector would feed);
* **MOT17** -- 7 MOT17-FRCNN sequences (scores 0.05 ... 1), evaluated with the MOT17 rules;
* **MOT15-ACF5-FRCNN** -- the 5 ACF scenes again with SORT's Faster R-CNN detections
  (``det_sort_frcnn.txt``): same scenes, another detector and score scale (a check, not counted
  in the sequences won).

Every tracker runs at its defaults with the sequence's frame rate and writes the *detection* box
of each matched track (the peers always do; ``cvray (kalman box)`` is cvray writing the filter's
box instead -- not comparable with the peers, shown for reference). Every output is scored by the
same TrackEval 1.3 code (:mod:`cvray.track.metrics.trackeval_native`): HOTA, DetA, AssA, IDF1,
MOTA, IDSW. Combined rows are TrackEval's ``combine_sequences`` (summed counts), not averages.
The TUD sequences (shipped inside the motmetrics wheel) are not used here: they are the
independent check of the metric oracle.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass

import numpy as np

import cvray.config  # noqa: F401
from cvray.track.config import TrackConfig
from cvray.track.interpolate import interpolate_tracks
from cvray.track.io import read_mot, read_seqinfo
from cvray.track.metrics.trackeval_native import trackeval_combine, trackeval_sequence, trackeval_summary
from cvray.track.records import tracks_to_mot
from cvray.track.sequence import track_mot_rows

MOT15 = ("ADL-Rundle-6", "ADL-Rundle-8", "ETH-Bahnhof", "ETH-Pedcross2", "ETH-Sunnyday", "KITTI-13",
         "KITTI-17", "PETS09-S2L1", "Venice-2")
MOT17 = tuple(f"MOT17-{n:02d}-FRCNN" for n in (2, 4, 5, 9, 10, 11, 13))
BENCHMARKS = ("MOT15", "MOT15-minmax", "MOT17", "MOT15-ACF5-FRCNN")
ACF = ("ETH-Sunnyday", "KITTI-13", "KITTI-17", "PETS09-S2L1", "Venice-2")
PEERS = ("SORT", "ByteTrack", "OC-SORT", "BoT-SORT", "C-BIoU", "McByte")
KEYS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")
#: ``cvray (offline)``: gaps up to this many frames filled by linear interpolation afterwards
OFFLINE_GAP = 20
#: cvray's defaults before 2026-12-01 (ByteTrack-like thresholds on raw scores)
OLD_DEFAULTS = ["track.scores=raw", "track.high_score=0.6", "track.low_score=0.1", "track.new_track_score=0.7",
                "track.fuse_score=true", "track.match_max_cost=0.9", "track.second_max_cost=0.9",
                "track.tentative_max_cost=0.9", "track.max_age=30", "track.age_per_hit=0",
                "track.kalman.nsa=false", "track.kalman.std_weight_velocity=0.025",
                "track.kalman.velocity_fps_power=0", "track.ego_shift=false"]
#: one change at a time, from the defaults back to the old value (or to an alternative)
ABLATION = [
    ("score model raw (thresholds read as calibrated scores)", ["track.scores=raw"]),
    ("score model quantile (empirical CDF over detections)", ["track.scores=quantile"]),
    ("score model minmax", ["track.scores=minmax"]),
    ("thresholds 0.6 / 0.1 / 0.7 (ByteTrack's) on ranks", ["track.high_score=0.6", "track.low_score=0.1",
                                                           "track.new_track_score=0.7"]),
    ("score fusion IoU x score on", ["track.fuse_score=true"]),
    ("first-stage max cost 0.9", ["track.match_max_cost=0.9"]),
    ("second / tentative max cost 0.9", ["track.second_max_cost=0.9", "track.tentative_max_cost=0.9"]),
    ("tentative max cost 0.5 (default until 2026-12-01 15:00)", ["track.tentative_max_cost=0.5"]),
    ("ego_shift off (no camera shift estimated from the matches)", ["track.ego_shift=false"]),
    ("ego_shift: significance 2 (rarer, larger shifts)", ["track.ego_significance=2"]),
    ("ego_shift: significance 0 (every median shift applied)", ["track.ego_significance=0"]),
    ("ego_shift: at least 5 matches", ["track.ego_min_matches=5"]),
    ("max_age 30 (1 s)", ["track.max_age=30"]),
    ("max_age 90 (3 s)", ["track.max_age=90"]),
    ("age_per_hit off (young tracks kept as long as old ones)", ["track.age_per_hit=0"]),
    ("NSA Kalman off", ["track.kalman.nsa=false"]),
    ("velocity noise not scaled by frame rate", ["track.kalman.velocity_fps_power=0"]),
    ("velocity noise 1/40 (old default), not scaled", ["track.kalman.std_weight_velocity=0.025",
                                                      "track.kalman.velocity_fps_power=0"]),
    ("velocity noise 1/160 (ByteTrack/BoT-SORT), not scaled", ["track.kalman.std_weight_velocity=0.00625",
                                                              "track.kalman.velocity_fps_power=0"]),
    ("+ OC-SORT observation-centric re-update (ORU)", ["track.oru=true"]),
    ("+ OC-SORT observation-centric recovery (OCR)", ["track.ocr=true"]),
    ("+ C-BIoU buffered IoU 0.1", ["track.iou_buffer=0.1"]),
    ("+ lost tracks frozen (no coasting)", ["track.freeze_lost=true"]),
    ("low-score second stage off", ["track.two_stage=false"]),
    ("second stage: tracked-last-frame tracks only (ByteTrack)", ["track.second_includes_lost=false"]),
    ("tentative: min_hits 1", ["track.min_hits=1"]),
    ("tentative: min_hits 3", ["track.min_hits=3"]),
    ("tentative: births from rank >= 0.9 confirmed at once", ["track.confirm_score=0.9"]),
]


@dataclass
class Seq:
    name: str
    bench: str
    det: np.ndarray
    gt: np.ndarray
    fps: float
    n_frames: int
    mot17: bool


def minmax(det: np.ndarray) -> np.ndarray:
    out = det.copy()
    s = out[:, 6]
    out[:, 6] = (s - s.min()) / max(s.max() - s.min(), 1e-12)
    return out


def load(root: str) -> list[Seq]:
    seqs = []
    for bench, names in (("MOT15", MOT15), ("MOT17", MOT17)):
        for name in names:
            d = os.path.join(root, name)
            info = read_seqinfo(os.path.join(d, "seqinfo.ini"))
            det, gt = read_mot(os.path.join(d, "det", "det.txt")), read_mot(os.path.join(d, "gt", "gt.txt"))
            seqs.append(Seq(name, bench, det, gt, info.frame_rate, info.seq_length, bench == "MOT17"))
            if bench == "MOT15":
                seqs.append(Seq(name, "MOT15-minmax", minmax(det), gt, info.frame_rate, info.seq_length, False))
            if name in ACF:      # the same scenes with SORT's Faster R-CNN detections (scores 0.5..1)
                frcnn = read_mot(os.path.join(d, "det", "det_sort_frcnn.txt"))
                seqs.append(Seq(name, "MOT15-ACF5-FRCNN", frcnn, gt, info.frame_rate, info.seq_length, False))
    return seqs


def peer_classes() -> dict:
    import trackers as T

    return {"SORT": T.SORTTracker, "ByteTrack": T.ByteTrackTracker, "OC-SORT": T.OCSORTTracker,
            "BoT-SORT": T.BoTSORTTracker, "C-BIoU": T.CBIoUTracker, "McByte": T.McByteTracker}


def run_peer(cls, seq: Seq) -> np.ndarray:
    """Roboflow tracker at its defaults (BoT-SORT without frames: no camera-motion compensation)."""
    import warnings

    import supervision as sv

    tr = cls(frame_rate=seq.fps)
    rows = []
    det = seq.det
    frames = det[:, 0].astype(int)
    for f in range(1, seq.n_frames + 1):
        r = det[frames == f]
        xyxy = np.c_[r[:, 2:4], r[:, 2:4] + r[:, 4:6]].astype(np.float32).reshape(-1, 4)
        d = sv.Detections(xyxy=xyxy, confidence=r[:, 6].astype(np.float32), class_id=np.zeros(len(r), int))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            o = tr.update(d)
        for b, tid in zip(o.xyxy, o.tracker_id if o.tracker_id is not None else []):
            if tid >= 0:
                rows.append([f, tid + 1, b[0], b[1], b[2] - b[0], b[3] - b[1], 1, -1, -1, -1])
    return np.asarray(rows, float).reshape(-1, 10)


def run_cvray(cfg: TrackConfig, seq: Seq, offline_gap: int = 0) -> np.ndarray:
    rows = tracks_to_mot(track_mot_rows(seq.det, config=cfg, frame_rate=seq.fps, num_frames=seq.n_frames))
    return interpolate_tracks(rows, offline_gap) if offline_gap else rows


def score(seqs: list[Seq], preds: dict[tuple[str, str], np.ndarray]) -> dict:
    """``{(bench, seq or 'combined'): summary}`` for one tracker's predictions."""
    out, parts = {}, {}
    for s in seqs:
        p = trackeval_sequence(s.gt, preds[(s.bench, s.name)], num_frames=s.n_frames, mot17_classes=s.mot17)
        out[(s.bench, s.name)] = trackeval_summary(p)
        parts.setdefault(s.bench, []).append(p)
    for b, ps in parts.items():
        out[(b, "combined")] = trackeval_summary(trackeval_combine(ps))
    return out


def parse_overrides(items: list[str]) -> dict:
    """``track.key=value`` (dotted, the CLI's syntax) into a nested dict for ``TrackConfig``."""
    tree: dict = {}
    for it in items:
        key, val = it.split("=", 1)
        parts = key.removeprefix("track.").split(".")
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = json.loads(val) if re.fullmatch(r"[-\d.eE]+|true|false|null", val) else val
    return tree


def cvray_config(overrides: dict, output_box: str) -> TrackConfig:
    base = TrackConfig().model_dump()

    def merge(a, b):
        for k, v in b.items():
            a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) else v
        return a

    return TrackConfig.model_validate(merge(merge(base, overrides), {"output_box": output_box}))


def run_all(seqs, names, overrides, cache_path=None) -> dict:
    cache = {}
    if cache_path and os.path.exists(cache_path):
        with open(cache_path) as fh:
            cache = json.load(fh)
    results, seconds = {}, {}
    peers = peer_classes() if any(n in PEERS for n in names) else {}
    for name in names:
        if name in cache:
            results[name] = {tuple(k.split("|")): v for k, v in cache[name].items()}
            continue
        preds, t0 = {}, time.perf_counter()
        for s in seqs:
            if name in PEERS:
                preds[(s.bench, s.name)] = run_peer(peers[name], s)
            else:
                box = "kalman" if "kalman" in name else "detection"
                gap = OFFLINE_GAP if "offline" in name else 0
                preds[(s.bench, s.name)] = run_cvray(cvray_config(overrides, box), s, gap)
        seconds[name] = time.perf_counter() - t0
        results[name] = score(seqs, preds)
        if cache_path and name in PEERS:
            cache[name] = {"|".join(k): v for k, v in results[name].items()}
            with open(cache_path, "w") as fh:
                json.dump(cache, fh)
    return results


def report(seqs, results) -> str:
    names = list(results)
    lines = []
    for b in BENCHMARKS:
        lines += [f"**{b}** combined ({sum(s.bench == b for s in seqs)} sequences)", "",
                  "| tracker | " + " | ".join(KEYS) + " |", "|---|" + "---:|" * len(KEYS)]
        for n in names:
            r = results[n][(b, "combined")]
            lines.append(f"| {n} | " + " | ".join(f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k])
                                                 for k in KEYS) + " |")
        lines.append("")
    comparable = [n for n in names if "kalman" not in n and "offline" not in n]
    lines += ["Per-sequence HOTA (detection boxes; **bold** = best of the comparable trackers)", "",
              "| sequence | " + " | ".join(comparable) + " |", "|---|" + "---:|" * len(comparable)]
    wins = {n: 0 for n in comparable}
    for b in BENCHMARKS:
        for s in [s for s in seqs if s.bench == b]:
            vals = [results[n][(b, s.name)]["HOTA"] for n in comparable]
            best = int(np.argmax(vals))
            if b in ("MOT15", "MOT17"):
                wins[comparable[best]] += 1
            cells = [f"**{v:.2f}**" if i == best else f"{v:.2f}" for i, v in enumerate(vals)]
            tag = {"MOT15-minmax": " (min-max)", "MOT15-ACF5-FRCNN": " (SORT FRCNN det)"}.get(b, "")
            lines.append(f"| {s.name}{tag} | " + " | ".join(cells) + " |")
    lines += ["", "Best HOTA on the 16 sequences (scores as shipped): "
              + ", ".join(f"{n} {w}" for n, w in wins.items()), ""]
    for n in names:
        gap = results[n][("MOT15", "combined")]["HOTA"] - results[n][("MOT15-minmax", "combined")]["HOTA"]
        lines.append(f"- {n}: MOT15 as shipped - min-max scaled = {gap:+.2f} HOTA")
    return "\n".join(lines)


def ablation(seqs) -> str:
    """Each change's effect on combined HOTA (detection boxes): the defaults, the old defaults,
    then one setting at a time changed from the defaults."""
    rows = [("**cvray defaults**", []), ("old defaults (before 2026-12-01)", OLD_DEFAULTS), *ABLATION]
    lines = ["| change from the defaults | MOT15 | MOT15 min-max | MOT17 | MOT15 ACF scenes, FRCNN det "
             "| sequences won |", "|---|---:|---:|---:|---:|---:|"]
    base = None
    for label, ov in rows:
        cfg = cvray_config(parse_overrides(ov), "detection")
        r = score(seqs, {(s.bench, s.name): run_cvray(cfg, s) for s in seqs})
        vals = [r[(b, "combined")]["HOTA"] for b in BENCHMARKS]
        won = sum(1 for s in seqs if s.bench in ("MOT15", "MOT17") and s.name in _PEER_BEST
                  and r[(s.bench, s.name)]["HOTA"] > _PEER_BEST[s.name])
        if base is None:
            base = vals
            cells = [f"{v:.2f}" for v in vals]
        else:
            cells = [f"{v:.2f} ({v - b0:+.2f})" for v, b0 in zip(vals, base)]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {won} |")
    return "\n".join(lines)


#: best peer HOTA per sequence (scores as shipped), filled by main() before the ablation
_PEER_BEST: dict[str, float] = {}


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, numpy {np.__version__}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                                   "refdata", "mot-dev"))
    ap.add_argument("--only", nargs="*", default=None, help="tracker names (cvray, cvray (kalman box), peers)")
    ap.add_argument("--set", nargs="*", default=[], help="cvray overrides track.key=value")
    ap.add_argument("--cache", default=None, help="json file caching the peers' scores")
    ap.add_argument("--json", default=None)
    ap.add_argument("--write", default=None, help="markdown file whose real-data tracking section is replaced")
    ap.add_argument("--ablation", action="store_true", help="also the one-change-at-a-time table")
    args = ap.parse_args(argv)
    seqs = load(args.data)
    names = args.only or [*PEERS, "cvray", "cvray (kalman box)", "cvray (offline)"]
    results = run_all(seqs, names, parse_overrides(args.set), args.cache)
    text = report(seqs, results)
    if args.ablation:
        for s in seqs:
            if s.bench in ("MOT15", "MOT17"):
                _PEER_BEST[s.name] = max(results[p][(s.bench, s.name)]["HOTA"] for p in PEERS if p in results)
        text += ("\n\nOne change at a time (combined HOTA, detection boxes; sequences won = best HOTA of "
                 "all trackers, out of 16)\n\n" + ablation(seqs))
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({n: {"|".join(k): v for k, v in r.items()} for n, r in results.items()}, fh, indent=1)
    if args.write:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        import trackers

        section = (f"## Tracking on real detections (`benchmarks/bench_track_real.py`)\n\n"
                   f"Run {stamp} on {machine()}; Roboflow `trackers` "
                   f"{getattr(trackers, '__version__', '2.6.1')} at defaults with each sequence's frame "
                   f"rate (BoT-SORT without frames, so without CMC), cvray at its defaults; every output "
                   f"scored by the same TrackEval 1.3.0 code (`cvray/track/metrics/trackeval_native.py`; "
                   f"MOT17 rules for MOT17). Detection-box output for every tracker except `cvray (kalman "
                   f"box)` (the filter's box, not comparable with the peers) and `cvray (offline)` (gaps "
                   f"<= {OFFLINE_GAP} frames linearly interpolated afterwards, not online). MOT15 = 9 "
                   f"sequences (5 ACF with raw scores -0.8..139, 4 SORT Faster R-CNN 0.5..1), MOT15-minmax "
                   f"= the same with scores min-max scaled per sequence, MOT17 = 7 MOT17-FRCNN, "
                   f"MOT15-ACF5-FRCNN = the 5 ACF scenes with SORT's Faster R-CNN detections (a check set, "
                   f"not counted in the sequences won). Deterministic: a rerun gives the same numbers. "
                   f"Discussion in `docs/tracking.md`, \"On real detections\".\n\n"
                   f"Reproduce: `.venv/bin/python benchmarks/bench_track_real.py --ablation "
                   f"[--cache peers.json]` (about 8 minutes on a 2-CPU VM; the cache keeps the peers' "
                   f"scores between runs).\n\n"
                   f"{text}\n")
        with open(args.write) as fh:
            doc = fh.read()
        pat = re.compile(r"## Tracking on real detections.*?(?=\n## |\Z)", re.S)
        doc = pat.sub(lambda _: section.rstrip("\n") + "\n", doc) if pat.search(doc) else doc.rstrip("\n") + "\n\n" + section
        with open(args.write, "w") as fh:
            fh.write(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
