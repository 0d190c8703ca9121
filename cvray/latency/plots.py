"""The latency sheet: per (setting, scene), the stages' p50 stacked into one bar, the total's p95
as a tick, the budget as a line (PNG)."""
from __future__ import annotations

from cvray.latency.timing import STAGES
from cvray.report.figures import plt as _plt
from cvray.report.figures import png as _png

__all__ = ["sheet_png"]


def sheet_png(rows: list[dict], budget_ms: float) -> bytes | None:
    timed = [r for r in rows if r["phase"] == "timed"]
    keys = list(dict.fromkeys((r["setting"], r["scene"]) for r in timed))
    if not keys:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.45 * len(keys)))
    stages = [s for s in STAGES if any(r["stage"] == s for r in timed)]
    left = [0.0] * len(keys)
    for s in stages:
        vals = [next((r["p50_ms"] for r in timed if (r["setting"], r["scene"]) == k and r["stage"] == s), 0.0)
                for k in keys]
        ax.barh(range(len(keys)), vals, left=left, label=s)
        left = [a + b for a, b in zip(left, vals)]
    p95 = [next((r["p95_ms"] for r in timed if (r["setting"], r["scene"]) == k and r["stage"] == "total"), None)
           for k in keys]
    ax.scatter([p if p is not None else 0 for p in p95], range(len(keys)), marker="|", s=200, color="k",
               label="total p95", zorder=3)
    ax.axvline(budget_ms, color="r", ls="--", lw=1, label=f"budget {budget_ms:g} ms")
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels([f"{a} / {b}" for a, b in keys], fontsize=7)
    ax.set_xlabel("ms per image (bars: p50 per stage)")
    ax.set_title("latency budget sheet")
    ax.legend(fontsize=6, ncol=3, loc="lower right")
    return _png(fig)
