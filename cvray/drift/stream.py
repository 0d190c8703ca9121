"""Drift over the frames of one ``cvray predict`` / ``cvray track`` run (pure; no Ray).

The read stage computes each frame's quality features where the decoded image already is
(:func:`frame_features`, in the parallel decode tasks); the driver gathers one small record per
frame (features, luma histogram, the frame's detections) into a :class:`DriftStream` and, at the
end, feeds every source's frames in time order through a :class:`~cvray.drift.monitor.DriftMonitor`.
Rows arrive from Ray in any order, so the stream sorts them first: the result does not depend on
how the work was split.

Sources and time:

* a video is its own source; its frames' time is the video time (frame / fps), and its fps
  (over ``video_stride``) turns timestamp gaps into frame drops;
* an image is in the source named by the first folder of its path inside the input
  (``cam0/000123.jpg`` -> ``cam0``), else in the source ``images``; its time is its position
  in the source's sorted file list (the n-th image at t = n s), so ``window_s`` reads as images.

Reference: with ``drift.reference`` (a run folder, or a ``drift_reference.json``) each source is
compared with that run's reference window of the same source; a source the reference does not
hold uses its own first window (said in the summary). Every run that monitored drift writes the
reference windows it used as ``drift_reference.json``, so a trusted run can serve later ones.
"""
from __future__ import annotations

import math
import posixpath
from typing import Any, Mapping

import numpy as np

from cvray.drift.features import FEATURES, image_features, luma_histogram
from cvray.drift.window import summary_from_json, summary_to_json

__all__ = ["REFERENCE_FILE", "REFERENCE_FORMAT", "DriftStream", "frame_features", "read_reference",
           "reference_record", "source_of"]

REFERENCE_FILE = "drift_reference.json"
REFERENCE_FORMAT = "cvray.drift_reference/1"
IMAGE_SOURCE = "images"


def frame_features(image: np.ndarray, encoded: bytes | None = None) -> dict[str, Any]:
    """``{"drift_features": float64[len(FEATURES)], "drift_luma": float64[bins]}`` of one decoded
    RGB frame (``encoded``: the file's bytes, read for the JPEG quality); NaN-filled when the
    frame is unusable (a failed decode), so the row still has the columns."""
    from cvray.drift.features import LUMA_BINS

    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 3:
        return {"drift_features": np.full(len(FEATURES), np.nan), "drift_luma": np.full(LUMA_BINS, np.nan)}
    jpeg = encoded if encoded is not None and bytes(encoded[:2]) == b"\xff\xd8" else None
    f = image_features(img, jpeg_bytes=jpeg)
    return {"drift_features": np.array([f[k] for k in FEATURES], np.float64),
            "drift_luma": np.asarray(luma_histogram(img), np.float64)}


def source_of(file_name: str, *, video: bool) -> str:
    """The source (camera) of a frame: the video's file name, or an image's first folder."""
    name = str(file_name).replace("\\", "/").lstrip("/")
    if video:
        return name
    head = name.split("/", 1)
    return head[0] if len(head) == 2 and head[0] else IMAGE_SOURCE


def reference_record(references: Mapping[str, Mapping[str, Any]], config: Mapping[str, Any]) -> dict[str, Any]:
    """The content of ``drift_reference.json``: each source's reference window summary."""
    import json

    return {"format": REFERENCE_FORMAT, "config": dict(config),
            "sources": {src: json.loads(summary_to_json(s)) for src, s in sorted(references.items())}}


def read_reference(spec: str) -> dict[str, dict[str, Any]]:
    """``{source: window summary}`` from a run folder/URI or a ``drift_reference.json``;
    ``ValueError`` naming the file when it is missing or not a drift reference."""
    import json

    from cvray.io.json_record import read_record

    uri, rec = read_record(spec, REFERENCE_FILE, what="drift reference", fmt=REFERENCE_FORMAT,
                           hint="give a run that was made with --drift, or its drift_reference.json")
    if not isinstance(rec.get("sources"), dict):
        raise ValueError(f"{uri}: not a cvray drift reference (no 'sources' entry)")
    try:
        return {str(src): summary_from_json(json.dumps(s)) for src, s in rec["sources"].items()}
    except ValueError as exc:
        raise ValueError(f"{uri}: {exc}") from None


def rules_at(psi_threshold: float, ks_pvalue: float | None):
    """The default rules with every signal's bars at the run's settings: PSI > ``psi_threshold``
    and, on continuous features, KS p < ``ks_pvalue`` (see :class:`cvray.drift.alerts.Signal`
    for why both), so ``drift.psi_threshold`` / ``drift.ks_pvalue`` move the alerts too."""
    from dataclasses import replace

    from cvray.drift.alerts import DEFAULT_RULES

    def sig(s):
        return replace(s, psi_min=psi_threshold, ks_pvalue_max=ks_pvalue)

    return tuple(replace(r, all_of=tuple(map(sig, r.all_of)), any_of=tuple(map(sig, r.any_of)),
                         none_of=tuple(map(sig, r.none_of))) for r in DEFAULT_RULES)


class DriftStream:
    """Frames of one run in any order -> per-source monitors in time order -> the drift tables.

    Args:
        config: a :class:`cvray.drift.config.DriftConfig`.
        reference: ``{source: summary}`` (:func:`read_reference`) or None.
        fps: ``{source: frames per second}`` of the video sources (after the stride).
    """

    def __init__(self, config, reference: Mapping[str, Mapping[str, Any]] | None = None,
                 fps: Mapping[str, float] | None = None) -> None:
        self.config = config
        self.given = {str(k): dict(v) for k, v in (reference or {}).items()}
        self.fps = {str(k): float(v) for k, v in (fps or {}).items() if v and math.isfinite(v) and v > 0}
        self._frames: dict[str, list[tuple]] = {}

    def add(self, source: str, order: float, timestamp_s: float | None, features: np.ndarray,
            luma: np.ndarray | None = None, predictions: Mapping[str, Any] | None = None) -> None:
        """One frame: ``order`` sorts frames within the source (a sequence number or frame index);
        ``timestamp_s`` None/NaN means "the frame's position in the source" (images)."""
        self._frames.setdefault(str(source), []).append((float(order), timestamp_s, features, luma, predictions))

    @property
    def frames(self) -> int:
        return sum(len(v) for v in self._frames.values())

    def compute(self) -> dict[str, Any]:
        """``{"drift", "alerts", "windows"}`` rows, the ``reference`` summaries used per source,
        ``own_reference`` (sources compared with their own first window) and ``suppressed``."""
        from cvray.drift.monitor import DriftMonitor

        out: dict[str, Any] = {"drift": [], "alerts": [], "windows": [], "reference": {},
                               "own_reference": [], "suppressed": {}}
        for src in sorted(self._frames):
            given = {src: self.given[src]} if src in self.given else None
            mon = DriftMonitor(self.config.monitor_config(fps=self.fps.get(src)), rules_at(self.config.psi_threshold, self.config.ks_pvalue),
                               reference=given)
            frames = sorted(self._frames[src], key=lambda f: f[0])
            for n, (_, ts, feats, luma, preds) in enumerate(frames):
                t = float(ts) if ts is not None and math.isfinite(float(ts)) else float(n)
                values = {k: float(v) for k, v in zip(FEATURES, np.asarray(feats, np.float64)) if math.isfinite(v)}
                hist = None
                if luma is not None and np.all(np.isfinite(luma)) and np.sum(luma) > 0:
                    hist = np.asarray(luma, np.float64)
                mon.update(src, t, values, luma_hist=hist, predictions=preds)
            mon.flush()
            rows = mon.compute()
            for key in ("drift", "alerts", "windows"):
                out[key] += rows[key]
            ref = mon.reference(src)
            if ref is not None:
                out["reference"][src] = ref
            if given is None:
                out["own_reference"].append(src)
            for rule, k in mon.suppressed.items():
                out["suppressed"][rule] = out["suppressed"].get(rule, 0) + k
        return out


def summarise(result: Mapping[str, Any], given_reference: str | None) -> dict[str, Any]:
    """The run summary's ``drift`` entry: windows, shifted features, alerts per rule."""
    by_rule: dict[str, int] = {}
    for a in result["alerts"]:
        by_rule[a["rule"]] = by_rule.get(a["rule"], 0) + 1
    shifted = sorted({r["feature"] for r in result["drift"] if r.get("shifted")})
    return {"reference": given_reference or "each source's first window",
            "own_reference": list(result["own_reference"]),
            "sources": len({w["source"] for w in result["windows"]}),
            "windows": len(result["windows"]), "alerts": len(result["alerts"]),
            "alerts_by_rule": dict(sorted(by_rule.items())), "shifted_features": shifted,
            "suppressed": dict(result["suppressed"])}


def video_source_name(uri: str) -> str:
    """The source name of a video given by URI (its base name, as :func:`source_of` gives it)."""
    return posixpath.basename(str(uri).rstrip("/"))


def write_drift(run: Any, stream: "DriftStream", config, *, plots: bool = True) -> dict[str, Any]:
    """Compute ``stream`` and write the ``drift`` / ``drift_alerts`` / ``drift_windows`` tables,
    ``drift_reference.json`` and the time-series plot into ``run``; returns the summary entry.
    One part each, rewritten whole, so a retried run never duplicates a row."""
    from cvray.drift.records import drift_alerts_table, drift_table, drift_windows_table
    from cvray.io import storage

    result = stream.compute()
    run.write_table("drift", drift_table(result["drift"]))
    run.write_table("drift_alerts", drift_alerts_table(result["alerts"]))
    run.write_table("drift_windows", drift_windows_table(result["windows"]))
    settings = config.model_dump(mode="json")
    storage.write_json(run.path(REFERENCE_FILE), reference_record(result["reference"], settings))
    summary = summarise(result, config.reference)
    summary["reference_file"] = run.path(REFERENCE_FILE)
    if plots:
        try:
            from cvray.drift.plots import drift_png

            data = drift_png(result, config.psi_threshold)
            if data:
                summary["plot"] = run.write_artifact("drift/drift.png", data)
        except Exception as exc:  # noqa: BLE001 - a plot never costs the measurements
            import logging

            logging.getLogger(__name__).warning("drift plot not drawn: %s", exc)
    return summary
