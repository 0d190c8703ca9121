"""Tracking stage of ``cvray demo``: track the synthetic sequences' noisy detections with one Ray
actor per sequence and score them against their exact ground truth (HOTA, IDF1, MOTA)."""
from __future__ import annotations

from typing import Any

from cvray.track.workflow import prepare_track, run_track

__all__ = ["demo_track"]


def demo_track(run: Any, cfg: Any, synth: dict) -> dict[str, Any]:
    if not synth.get("mot_root"):
        return {"skipped": "no synthetic sequences (--videos 0)"}
    inputs = prepare_track(synth["mot_root"], out=run.path("artifacts", "tracks"))
    s = run_track(run, cfg.track, inputs, ray=True)
    m = s.get("metrics", {})
    return {"sequences": s["sequences"], "failed": s["failed"], "tracks": s["tracks"],
            **{k: m.get(k) for k in ("HOTA", "IDF1", "MOTA", "IDSW")}, "out": s["out"]}
