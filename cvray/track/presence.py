"""Temporal evidence for tracks: an object is *present* after N consistent frames, and the flicker
that removes (pure numpy; no Ray).

Call from ``cvray track`` (one call per run, or per sequence)::

    from cvray.track.presence import presence_summary
    s = presence_summary(rows, n_consecutive=3, max_missed=2)
    s["raw"]["flicker_rate"], s["present"]["flicker_rate"], s["flicker_removed"], s["onset_delay_mean"]

From a tracker's MOT array (``frame, id, x, y, w, h, score, ...`` per row, as
``cvray.track.records.tracks_to_mot`` returns): ``presence_summary(mot_rows(mot, "seq-1"))``.

``rows``: an iterable of per-frame track observations, dicts (or objects with those attributes)
``{"track_id", "frame", ["sequence"], ["score"], ["decision"]}`` -- one per (track, frame) in
which the tracker output the track. A row is an *observation* when its ``decision`` is in
``accept`` (default ``act`` / ``observe``: an ``abstain`` is not evidence) and its ``score`` is at
least ``min_score`` (default 0); a row without either field is an observation. Tracks are keyed
by (``sequence``, ``track_id``).

The rule (hysteresis):

* a track becomes **present** at the frame of its ``n_consecutive``-th consecutive observed frame;
* a present track stays present through missed frames and becomes **absent** at its
  ``max_missed``-th consecutive missed frame (``max_missed=1``: absent at the first miss); to
  become present again it needs ``n_consecutive`` consecutive observations again.

Flicker is counted over each track's **span**, its first to its last observed frame (the frames
a track covers; a frame number that never occurs in ``rows`` is a missed frame): a *toggle* is a
change of the visible state from one frame to the next, counted from the first frame the state is
visible (an appearance is not flicker). Raw visibility is "observed in this frame"; filtered
visibility is "present". ``flicker_rate = toggles / track-frames`` (summed over tracks), and
``flicker_removed = 1 - present / raw`` (None when raw has none).

What the filter costs, also in the summary: ``onset_delay_*`` frames from a track's first
observation to its first present frame (``n_consecutive - 1`` when its first frames are
consecutive); ``tracks_never_present`` (too short or too broken: suppressed, with their
``observed_frames_suppressed``); ``observed_not_present`` frames (observations the filter hides:
lost recall); ``held_frames`` (present while not observed inside the span: the hysteresis bridging
gaps).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

__all__ = ["count_toggles", "mot_rows", "presence_states", "presence_summary", "track_visibility"]

ACCEPT = ("act", "observe")


def presence_states(observed, n_consecutive: int = 3, max_missed: int = 2) -> np.ndarray:
    """Present (bool) per frame of ``observed`` (bool per consecutive frame) under the hysteresis rule."""
    if n_consecutive < 1 or max_missed < 1:
        raise ValueError(f"n_consecutive and max_missed must be >= 1, got {n_consecutive}, {max_missed}")
    obs = np.asarray(observed, bool).reshape(-1)
    out = np.zeros(len(obs), bool)
    present, hits, misses = False, 0, 0
    for i, o in enumerate(obs):
        if o:
            hits, misses = hits + 1, 0
            if not present and hits >= n_consecutive:
                present = True
        else:
            hits, misses = 0, misses + 1
            if present and misses >= max_missed:
                present = False
        out[i] = present
    return out


def count_toggles(visible) -> int:
    """Changes of ``visible`` from frame to frame, counted from its first visible frame."""
    v = np.asarray(visible, bool).reshape(-1)
    on = np.flatnonzero(v)
    if not len(on):
        return 0
    v = v[on[0]:]
    return int(np.sum(v[1:] != v[:-1]))


def _get(r: Any, key: str, default=None):
    if isinstance(r, Mapping):
        return r.get(key, default)
    return getattr(r, key, default)


def track_visibility(rows: Iterable[Any], *, accept: tuple[str, ...] = ACCEPT,
                     min_score: float = 0.0) -> dict[tuple, tuple[int, np.ndarray]]:
    """(sequence, track_id) -> (first frame, observed bool per frame of the span)."""
    frames: dict[tuple, set[int]] = {}
    for r in rows:
        key = (_get(r, "sequence"), _get(r, "track_id"))
        if key[1] is None or _get(r, "frame") is None:
            raise ValueError(f"a presence row needs track_id and frame: {r!r}")
        frames.setdefault(key, set())
        d, s = _get(r, "decision"), _get(r, "score")
        if (d is not None and str(d) not in accept) or (s is not None and float(s) < min_score):
            continue
        frames[key].add(int(_get(r, "frame")))
    out = {}
    for key, fs in frames.items():
        if not fs:
            continue  # never observed: no span
        f0, f1 = min(fs), max(fs)
        obs = np.zeros(f1 - f0 + 1, bool)
        obs[[f - f0 for f in fs]] = True
        out[key] = (f0, obs)
    return out


def mot_rows(mot, sequence: str | None = None) -> list[dict[str, Any]]:
    """Presence rows from a MOT array (columns ``frame, id, x, y, w, h, score, ...``)."""
    a = np.asarray(mot, dtype=np.float64)
    if not a.size:
        return []
    a = a.reshape(-1, a.shape[-1])
    return [{"sequence": sequence, "track_id": int(r[1]), "frame": int(r[0]), "score": float(r[6])} for r in a]


def presence_summary(rows: Iterable[Any], n_consecutive: int = 3, max_missed: int = 2, *,
                     accept: tuple[str, ...] = ACCEPT, min_score: float = 0.0,
                     per_track: bool = False) -> dict[str, Any]:
    """Flicker of the raw per-frame observations vs after the presence filter, and its cost.

    See the module doc for the rule and every key. ``per_track=True`` adds ``tracks_detail``
    (one dict per track: key, first frame, frames, toggles raw / present, onset delay)."""
    vis = track_visibility(rows, accept=accept, min_score=min_score)
    raw_t = pres_t = frames = observed = 0
    never = suppressed = hidden = held = 0
    delays: list[int] = []
    detail = []
    for key in sorted(vis, key=lambda k: (str(k[0]), str(k[1]))):
        f0, obs = vis[key]
        pres = presence_states(obs, n_consecutive, max_missed)
        rt, pt = count_toggles(obs), count_toggles(pres)
        raw_t, pres_t, frames, observed = raw_t + rt, pres_t + pt, frames + len(obs), observed + int(obs.sum())
        on = np.flatnonzero(pres)
        delay = int(on[0]) if len(on) else None  # the span starts at the first observation
        if delay is None:
            never, suppressed = never + 1, suppressed + int(obs.sum())
        else:
            delays.append(delay)
        hidden += int((obs & ~pres).sum())
        held += int((pres & ~obs).sum())
        if per_track:
            detail.append({"sequence": key[0], "track_id": key[1], "first_frame": f0, "frames": len(obs),
                           "observed": int(obs.sum()), "toggles_raw": rt, "toggles_present": pt,
                           "onset_delay": delay})

    def rate(t):
        return float(t / frames) if frames else None

    out: dict[str, Any] = {
        "n_consecutive": int(n_consecutive), "max_missed": int(max_missed), "accept": list(accept),
        "min_score": float(min_score), "tracks": len(vis), "track_frames": frames, "observed_frames": observed,
        "raw": {"toggles": raw_t, "flicker_rate": rate(raw_t)},
        "present": {"toggles": pres_t, "flicker_rate": rate(pres_t)},
        "flicker_removed": (1.0 - pres_t / raw_t) if raw_t else None,
        "onset_delay_mean": float(np.mean(delays)) if delays else None,
        "onset_delay_max": int(max(delays)) if delays else None,
        "tracks_never_present": never, "observed_frames_suppressed": suppressed,
        "observed_not_present": hidden, "held_frames": held,
    }
    if per_track:
        out["tracks_detail"] = detail
    return out
