"""The report's drift section (``cvray predict`` / ``cvray track`` with ``--drift``): what was
compared with what, the alerts, the features that moved, the PSI plot and the shift matrix."""
from __future__ import annotations

import html
from typing import Any, Callable

from cvray.io import storage

__all__ = ["drift_section"]


def drift_section(run_uri: str, parts: list[str], m: dict, *, read: Callable[[str, str], list[dict] | None],
                  table: Callable[..., str], img: Callable[..., str]) -> None:
    """Append the section when the run has a ``drift_windows`` table (the report's own helpers
    ``read`` / ``table`` / ``img`` draw it)."""
    windows = read(run_uri, "drift_windows")
    if not windows:
        return
    from cvray.drift.matrix import SHIFT_MATRIX

    s = (m.get("summary") or {}).get("drift") or {}
    parts.append(f"<h2>Drift ({len({w['source'] for w in windows})} sources, {len(windows)} windows; reference: "
                 f"{html.escape(str(s.get('reference', '?')))})</h2>")
    if s.get("own_reference"):
        parts.append("<p class=meta>compared with their own first window: "
                     f"{html.escape(', '.join(map(str, s['own_reference'])))}</p>")
    alerts = read(run_uri, "drift_alerts") or []
    if alerts:
        parts.append(f"<h3 class=warn>Alerts ({len(alerts)})</h3>"
                     + table(alerts, ["source", "rule", "window_index", "window_start_s", "window_end_s", "message"]))
    else:
        parts.append("<p>No alert fired.</p>")
    plot = storage.join(run_uri, "artifacts", "drift", "drift.png")
    if storage.exists(plot):
        parts.append(img(storage.read_bytes(plot), "drift.png"))
    rows = [r for r in (read(run_uri, "drift") or []) if r.get("shifted") or r.get("ks_shifted")]
    if rows:
        parts.append(f"<h3>Features that moved ({len(rows)} rows: PSI above its bar or KS p below its bar)</h3>"
                     + table(sorted(rows, key=lambda r: (r["source"], r["window_index"], -(r["psi"] or 0))),
                             ["source", "window_index", "feature", "reference_stat", "current_stat", "psi",
                              "psi_noise_floor", "ks_pvalue", "shifted", "ks_shifted"]))
    parts.append("<details><summary>Shift matrix: expected conditions x shift type x what detects each"
                 "</summary>" + table([{k: (", ".join(v) if isinstance(v, tuple) else v) for k, v in r.items()}
                                       for r in SHIFT_MATRIX]) + "</details>")
