"""One time window of one source: image features + prediction proxies + frame timing -> a summary.

The summary is plain JSON-ready data, so the reference window of a run can be written to a file
and loaded by a later run (:func:`summary_to_json` / :func:`summary_from_json`). It keeps the
per-frame samples (not only histograms) because KS needs the values and PSI's bins are the
reference's own quantiles; a window of a few hundred frames is a few kilobytes per feature.

Layout: ``{"source", "start_s", "end_s", "frames", "samples": {name: [float]},
"categories": {name: {category: count}}, "scalars": {name: float | None}}``.
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from cvray.drift.features import FEATURES, LUMA_BINS, frame_timing
from cvray.drift.proxies import PredictionProxies

__all__ = ["RATE_OF", "WindowAccumulator", "summary_to_json", "summary_from_json"]

# the category whose share is a categorical signal's "rate" (its reference / current statistic)
RATE_OF: dict[str, str] = {"empty_frames": "empty", "abstention": "abstain", "frame_drops": "dropped"}
_SUMMARY_KEYS = ("source", "start_s", "end_s", "frames", "samples", "categories", "scalars")


class WindowAccumulator:
    """Accumulates one window: ``reset / update / compute / partial / combine``.

    ``fps`` (when the source is a video of known rate) turns the timestamps into frame-drop counts
    by :func:`cvray.drift.features.frame_timing`; without it no timing signal is produced.
    """

    def __init__(self, source: str, *, fps: float | None = None) -> None:
        if fps is not None and not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive finite number or None, got {fps!r}")
        self.source, self.fps = str(source), fps
        self.reset()

    def reset(self) -> None:
        self.features: dict[str, list[float]] = {k: [] for k in FEATURES}
        self.luma_hist = np.zeros(LUMA_BINS, dtype=np.float64)
        self.timestamps: list[float] = []
        self.proxies = PredictionProxies()
        self.has_predictions = False

    @property
    def frames(self) -> int:
        return len(self.timestamps)

    def update(self, timestamp_s: float, features: Mapping[str, float], *,
               luma_hist: Sequence[float] | np.ndarray | None = None,
               predictions: Mapping[str, Any] | None = None) -> None:
        """Add one frame: its :func:`image_features`, optional luma histogram and optional
        ``predictions`` (keyword arguments of :meth:`PredictionProxies.update`)."""
        if not math.isfinite(timestamp_s):
            raise ValueError(f"timestamp_s must be finite, got {timestamp_s!r}")
        unknown = sorted(set(features) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}; expected a subset of {list(FEATURES)}")
        self.timestamps.append(float(timestamp_s))
        for k in FEATURES:
            self.features[k].append(float(features.get(k, math.nan)))
        if luma_hist is not None:
            h = np.asarray(luma_hist, dtype=np.float64).ravel()
            if h.shape != self.luma_hist.shape:
                raise ValueError(f"luma_hist must have {LUMA_BINS} bins, got {h.size}")
            self.luma_hist += h
        if predictions is not None:
            self.has_predictions = True
            self.proxies.update(**predictions)

    def partial(self) -> dict[str, Any]:
        return {"source": self.source, "fps": self.fps, "features": {k: list(v) for k, v in self.features.items()},
                "luma_hist": self.luma_hist.tolist(), "timestamps": list(self.timestamps),
                "proxies": self.proxies.partial(), "has_predictions": self.has_predictions}

    @classmethod
    def combine(cls, partials: Iterable[dict[str, Any]]) -> "WindowAccumulator":
        parts = list(partials)
        if not parts:
            raise ValueError("combine needs at least one partial")
        out = cls(parts[0]["source"], fps=parts[0]["fps"])
        for p in parts:
            for k in FEATURES:
                out.features[k].extend(p["features"][k])
            out.luma_hist += np.asarray(p["luma_hist"])
            out.timestamps.extend(p["timestamps"])
            out.has_predictions |= p["has_predictions"]
        out.proxies = PredictionProxies.combine(p["proxies"] for p in parts)
        return out

    def compute(self) -> dict[str, Any]:
        """The window summary (module docstring); a feature with no finite value is left out."""
        t = np.sort(np.asarray(self.timestamps, dtype=np.float64))
        samples = {k: v for k, v in self.features.items() if any(math.isfinite(x) for x in v)}
        categories: dict[str, dict[str, float]] = {}
        scalars: dict[str, float | None] = {}
        if self.luma_hist.sum() > 0:
            categories["luma_hist"] = {f"{i:02d}": float(v) for i, v in enumerate(self.luma_hist)}
        if self.has_predictions:
            p = self.proxies.compute()
            samples.update(frame_confidence=p["frame_confidence"],
                           frame_detections=[float(x) for x in p["frame_detections"]])
            if p["track_lifetimes"]:
                samples.update(track_lifetime=[float(x) for x in p["track_lifetimes"]],
                               track_gaps=[float(x) for x in p["track_gaps"]])
            if p["class_counts"]:
                categories["class_mix"] = p["class_counts"]
            categories["empty_frames"] = p["empty_counts"]
            if p["abstention_counts"] is not None:
                categories["abstention"] = p["abstention_counts"]
            scalars.update({k: p[k] for k in ("mean_confidence", "empty_rate", "abstention_rate",
                                              "fragmentation_rate")})
        if self.fps is not None and t.size >= 2:
            timing = frame_timing(t, self.fps)
            categories["frame_drops"] = {"dropped": timing["frame_drops"], "kept": timing["frames"]}
            scalars.update({k: timing[k] for k in ("frame_drops", "max_gap_s", "drop_rate")})
        return {"source": self.source, "start_s": float(t[0]) if t.size else None,
                "end_s": float(t[-1]) if t.size else None, "frames": int(t.size),
                "samples": samples, "categories": categories, "scalars": scalars}


def summary_to_json(summary: Mapping[str, Any]) -> str:
    """A window summary as JSON text (NaN-free: non-finite sample values are dropped)."""
    clean = dict(summary)
    clean["samples"] = {k: [x for x in v if math.isfinite(x)] for k, v in summary["samples"].items()}
    return json.dumps(clean, sort_keys=True, allow_nan=False)


def summary_from_json(text: str) -> dict[str, Any]:
    """Parse :func:`summary_to_json` output, checking the keys so a wrong file fails by name."""
    data = json.loads(text)
    missing = [k for k in _SUMMARY_KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        raise ValueError(f"not a drift window summary: missing {missing}")
    return data
