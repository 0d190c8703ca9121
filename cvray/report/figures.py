"""matplotlib without a display, and a figure as PNG bytes: the one helper every plot uses
(the HTML report, ``cvray tune``'s and ``cvray robustness``' artifacts)."""
from __future__ import annotations

import io

__all__ = ["plt", "png"]


def plt():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as pyplot

    return pyplot


def png(fig, dpi: int = 90) -> bytes:
    """``fig`` as PNG bytes (tight bounding box); the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt().close(fig)
    return buf.getvalue()
