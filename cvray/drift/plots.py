"""The drift plot of a run: per source, each feature's PSI against its reference over the
windows (the threshold as a line, alerts as marks) above the window's mean confidence (PNG)."""
from __future__ import annotations

from typing import Any, Mapping

from cvray.report.figures import plt as _plt
from cvray.report.figures import png as _png

__all__ = ["drift_png"]


def drift_png(result: Mapping[str, Any], psi_threshold: float = 0.2) -> bytes | None:
    """PNG bytes of the plot, or None when no window was compared with a reference."""
    rows = [r for r in result["drift"] if r.get("psi") is not None]
    if not rows:
        return None
    sources = sorted({r["source"] for r in rows})
    plt = _plt()
    fig, axes = plt.subplots(2, len(sources), figsize=(4.5 * len(sources) + 1, 5.5), squeeze=False,
                             sharex="col", gridspec_kw={"height_ratios": [2, 1]})
    for j, src in enumerate(sources):
        ax, ax2 = axes[0][j], axes[1][j]
        mine = [r for r in rows if r["source"] == src]
        for feat in sorted({r["feature"] for r in mine}):
            pts = sorted((r["window_index"], r["psi"]) for r in mine if r["feature"] == feat)
            if max(p for _, p in pts) > psi_threshold / 4:  # only features that moved at all
                ax.plot([w for w, _ in pts], [p for _, p in pts], marker=".", lw=1, label=feat)
        ax.axhline(psi_threshold, color="r", ls="--", lw=1, label=f"PSI {psi_threshold:g}")
        ax.set_yscale("symlog", linthresh=0.05)
        ax.set_ylim(bottom=0)
        fired: dict[int, list[str]] = {}
        for a in (a for a in result["alerts"] if a["source"] == src):
            fired.setdefault(int(a["window_index"]), []).append(a["rule"])
        for w, rules in sorted(fired.items()):
            ax.axvline(w, color="0.6", lw=0.8, ls=":")
            ax.annotate(", ".join(rules), (w, ax.get_ylim()[1]), fontsize=6, rotation=90, va="top", ha="right")
        ax.set_title(f"{src}: PSI vs reference", fontsize=9)
        ax.legend(fontsize=6, loc="upper left")
        wins = sorted((w["window_index"], w.get("mean_confidence")) for w in result["windows"]
                      if w["source"] == src and w.get("mean_confidence") is not None)
        if wins:
            ax2.plot([w for w, _ in wins], [c for _, c in wins], marker=".", color="k", lw=1)
        ax2.set_ylabel("mean confidence", fontsize=8)
        ax2.set_xlabel("window (0: the reference when it is the source's own)", fontsize=8)
        ax2.xaxis.get_major_locator().set_params(integer=True)
    return _png(fig)
