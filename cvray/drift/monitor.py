"""DriftMonitor: per-source windows compared with a reference window by PSI and KS, plus alerts.

Why per source: every camera has its own normal (a tunnel camera is dark at noon), so each source
key is compared only with its own reference -- the first closed window of that source, or a stored
reference summary (:func:`cvray.drift.window.summary_to_json`) from an earlier, trusted run.

Steps on every closed window of a source:

1. summarise the window (:class:`cvray.drift.window.WindowAccumulator`);
2. if the source has no reference yet, the summary becomes the reference (no rows);
3. else :func:`compare` every sample (PSI over reference quantile bins + KS) and every categorical
   distribution (PSI over the categories) with the reference -> ``drift`` rows;
4. evaluate each rule on those rows; a rule that fires within its cooldown of its last alert on
   this source is suppressed (counted in ``suppressed``), else it becomes an alert row.

Windows close by frame count (``window_frames``) or by time (``window_s``: a frame at or past
``start + window_s``, start being the window's first frame, opens a new window), whichever
comes first; :meth:`DriftMonitor.flush`
closes the open windows at the end of a stream. Rows are plain dicts whose keys are the columns of
the ``drift`` / ``drift_alerts`` tables.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from cvray.drift import stats
from cvray.drift.alerts import DEFAULT_RULES, Rule, evaluate_rule
from cvray.drift.window import RATE_OF, WindowAccumulator

__all__ = ["MonitorConfig", "compare", "DriftMonitor"]


@dataclass(frozen=True)
class MonitorConfig:
    """Window and test settings; the thresholds default to the stated constants of :mod:`stats`.

    ``window_frames`` defaults to 500 so that the no-shift PSI floor, (B - 1)(1/n + 1/m) = 0.036,
    is well under the 0.1 "stable" line; ``min_samples`` is the fewest values a sample may have
    before PSI / KS are computed for it (fewer: the row carries None and a note).
    """

    window_frames: int | None = 500
    window_s: float | None = None
    fps: float | None = None
    psi_bins: int = stats.PSI_BINS
    psi_eps: float = stats.PSI_EPS
    psi_threshold: float = stats.PSI_SIGNIFICANT
    ks_pvalue: float = stats.KS_PVALUE
    min_samples: int = 50

    def __post_init__(self) -> None:
        if self.window_frames is None and self.window_s is None:
            raise ValueError("MonitorConfig needs window_frames or window_s")
        if self.window_frames is not None and (not isinstance(self.window_frames, int) or self.window_frames < 1):
            raise ValueError(f"window_frames must be an integer >= 1 or None, got {self.window_frames!r}")
        if self.window_s is not None and not self.window_s > 0:
            raise ValueError(f"window_s must be > 0 or None, got {self.window_s!r}")
        if not isinstance(self.min_samples, int) or self.min_samples < 2:
            raise ValueError(f"min_samples must be an integer >= 2, got {self.min_samples!r}")


def _rate(counts: Mapping[str, float], key: str) -> float | None:
    total = sum(counts.values())
    return counts.get(key, 0) / total if total else None


def compare(reference: Mapping[str, Any], current: Mapping[str, Any],
            config: MonitorConfig = MonitorConfig()) -> list[dict[str, Any]]:
    """``drift`` rows for every sample and category distribution present in both summaries."""
    base = {"source": current["source"], "window_start_s": current["start_s"],
            "window_end_s": current["end_s"], "frames": current["frames"]}
    rows = []
    for name in sorted(set(reference["samples"]) & set(current["samples"])):
        r = np.asarray(reference["samples"][name], dtype=np.float64)
        c = np.asarray(current["samples"][name], dtype=np.float64)
        r, c = r[np.isfinite(r)], c[np.isfinite(c)]
        row = {**base, "feature": name, "kind": "continuous", "stat": "median",
               "reference_stat": float(np.median(r)) if r.size else None,
               "current_stat": float(np.median(c)) if c.size else None,
               "psi": None, "ks_statistic": None, "ks_pvalue": None, "psi_noise_floor": None, "note": None}
        if min(r.size, c.size) < config.min_samples:
            row["note"] = f"too few values ({r.size} reference, {c.size} current; need {config.min_samples})"
        else:
            row["psi"] = stats.psi(r, c, bins=config.psi_bins, eps=config.psi_eps)
            row["ks_statistic"], row["ks_pvalue"] = stats.ks(r, c)
            row["psi_noise_floor"] = stats.psi_noise_floor(r.size, c.size, config.psi_bins)
        rows.append(row)
    for name in sorted(set(reference["categories"]) & set(current["categories"])):
        rc, cc = reference["categories"][name], current["categories"][name]
        key = RATE_OF.get(name)
        rows.append({**base, "feature": name, "kind": "categorical", "stat": "rate" if key else None,
                     "reference_stat": _rate(rc, key) if key else None,
                     "current_stat": _rate(cc, key) if key else None,
                     "psi": stats.psi_categorical(rc, cc, eps=config.psi_eps),
                     "ks_statistic": None, "ks_pvalue": None, "psi_noise_floor": None, "note": None})
    for row in rows:
        row["psi_level"] = stats.psi_level(row["psi"])
        row["shifted"] = row["psi"] is not None and row["psi"] > config.psi_threshold
        row["ks_shifted"] = row["ks_pvalue"] is not None and row["ks_pvalue"] < config.ks_pvalue
    return rows


class DriftMonitor:
    """Per-source drift windows, reference comparison and rate-limited alerts (module docstring)."""

    def __init__(self, config: MonitorConfig = MonitorConfig(), rules: Sequence[Rule] = DEFAULT_RULES, *,
                 reference: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"rule names must be unique, got {names}")
        self.config, self.rules = config, tuple(rules)
        self._given_reference = {str(k): dict(v) for k, v in (reference or {}).items()}
        self.reset()

    def reset(self) -> None:
        """Forget all windows, alerts and learned references (given references are kept)."""
        self._open: dict[str, WindowAccumulator] = {}
        self._index: dict[str, int] = {}
        self._reference: dict[str, dict[str, Any]] = dict(self._given_reference)
        self._last_alert: dict[tuple[str, str], tuple[int, float]] = {}
        self.drift_rows: list[dict[str, Any]] = []
        self.alert_rows: list[dict[str, Any]] = []
        self.window_rows: list[dict[str, Any]] = []
        self.suppressed: dict[str, int] = {}

    def reference(self, source: str) -> dict[str, Any] | None:
        """The reference summary of ``source`` (JSON-ready), or None before its first window closes."""
        return self._reference.get(str(source))

    def update(self, source: str, timestamp_s: float, features: Mapping[str, float], *,
               luma_hist: Sequence[float] | np.ndarray | None = None,
               predictions: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Add one frame of ``source``; returns the alert rows of any window this frame closed."""
        src = str(source)
        acc = self._open.get(src)
        fired: list[dict[str, Any]] = []
        ws = self.config.window_s
        if acc is not None and acc.frames and ws is not None and timestamp_s >= acc.timestamps[0] + ws:
            fired += self._close(src)
            acc = None
        if acc is None:
            acc = self._open[src] = WindowAccumulator(src, fps=self.config.fps)
        acc.update(timestamp_s, features, luma_hist=luma_hist, predictions=predictions)
        if self.config.window_frames is not None and acc.frames >= self.config.window_frames:
            fired += self._close(src)
        return fired

    def flush(self) -> list[dict[str, Any]]:
        """Close every open window (end of stream); returns their alert rows."""
        fired: list[dict[str, Any]] = []
        for src in sorted(self._open):
            fired += self._close(src)
        return fired

    def compute(self) -> dict[str, list[dict[str, Any]]]:
        """All rows so far: ``{"drift": [...], "alerts": [...], "windows": [...]}``; a window row holds
        the window's scalars (mean confidence, empty / abstention / fragmentation rate, frame drops,
        max gap) for the report's time series, the reference window included."""
        return {"drift": list(self.drift_rows), "alerts": list(self.alert_rows), "windows": list(self.window_rows)}

    def _close(self, src: str) -> list[dict[str, Any]]:
        acc = self._open.pop(src, None)
        if acc is None or not acc.frames:
            return []
        summary = acc.compute()
        index = self._index.get(src, 0)
        self._index[src] = index + 1
        is_reference = src not in self._reference
        self.window_rows.append({"source": src, "window_index": index, "window_start_s": summary["start_s"],
                                 "window_end_s": summary["end_s"], "frames": summary["frames"],
                                 "is_reference": is_reference, **summary["scalars"]})
        if is_reference:  # 2. the first window is the reference
            self._reference[src] = summary
            return []
        rows = compare(self._reference[src], summary, self.config)
        for row in rows:
            row["window_index"] = index
        self.drift_rows += rows
        by_feature = {row["feature"]: row for row in rows}
        fired = []
        for rule in self.rules:  # 4. rules, rate-limited per (source, rule)
            evidence = evaluate_rule(rule, by_feature)
            if evidence is None:
                continue
            last = self._last_alert.get((src, rule.name))
            start = summary["start_s"]
            if last is not None and (index - last[0] < rule.cooldown_windows or (
                    rule.cooldown_s is not None and start - last[1] < rule.cooldown_s)):
                self.suppressed[rule.name] = self.suppressed.get(rule.name, 0) + 1
                continue
            self._last_alert[(src, rule.name)] = (index, summary["end_s"])
            fired.append({"source": src, "rule": rule.name, "window_index": index,
                          "window_start_s": start, "window_end_s": summary["end_s"],
                          "signals": evidence, "message": rule.message})
        self.alert_rows += fired
        return fired
