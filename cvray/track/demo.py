"""Tracking stage of ``cvray demo``: track the synthetic sequences' noisy detections with one Ray
actor per sequence and score them against their exact ground truth (HOTA, IDF1, MOTA)."""
from __future__ import annotations

from typing import Any

from cvray.track.runner import sequence_jobs, track_jobs

__all__ = ["demo_track"]


def demo_track(run: Any, cfg: Any, synth: dict) -> dict[str, Any]:
    if not synth.get("mot_root"):
        return {"skipped": "no synthetic sequences (--videos 0)"}
    jobs = sequence_jobs(synth["mot_root"])
    s = track_jobs(run, jobs, cfg.track, run.path("artifacts", "tracks"), use_ray=True, ray_cfg=cfg.ray)
    m = s.get("metrics", {})
    return {"sequences": s["sequences"], "failed": s["failed"], "tracks": s["tracks"],
            **{k: m.get(k) for k in ("HOTA", "IDF1", "MOTA", "IDSW")}, "out": s["out"]}
