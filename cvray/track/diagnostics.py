"""Why did identities break? ID switches and fragmentations attributed to a cause, and metrics
stratified by occlusion level.

Events come from the same ``motmetrics`` accumulator as the CLEAR metrics, so the counted ID
switches and fragmentations are exactly the ones MOTA/Frag count. Each is attributed, from the gt
alone (visibility column and box geometry), over the window since the object was last tracked:

1. ``re-entry``  -- the object left the view in the window (no gt row, or less than
   ``inside_fraction`` of its box inside the image);
2. ``occlusion`` -- its visibility fell below ``occlusion_visibility``;
3. ``crossing``  -- its box overlapped another gt object by IoU >= ``crossing_iou``;
4. ``other``     -- none of the above (detector misses, localisation, tracker error).

The first matching cause wins, in that order. Files without a visibility column (MOT15) never
yield ``occlusion``.
"""
from __future__ import annotations

import motmetrics as mm
import numpy as np

from cvray.track.config import DiagnosticsConfig
from cvray.track.io import FRAME, ID, VIS, X, split_frames
from cvray.track.metrics.compat import iou_matrix

__all__ = ["CAUSES", "combine_diagnostics", "diagnose_sequence"]

CAUSES = ("re-entry", "occlusion", "crossing", "other")
_MATCH_IOU = 0.5


def _inside_fraction(box: np.ndarray, size: tuple[int, int] | None) -> float:
    if size is None:
        return 1.0
    h, w = size
    x, y, bw, bh = box
    # MOT boxes are 1-based: the image covers [1, w + 1) x [1, h + 1)
    ix = max(0.0, min(x + bw, w + 1) - max(x, 1))
    iy = max(0.0, min(y + bh, h + 1) - max(y, 1))
    return ix * iy / max(bw * bh, 1e-9)


def diagnose_sequence(gt: np.ndarray, pred: np.ndarray, cfg: DiagnosticsConfig | None = None, *,
                      image_size: tuple[int, int] | None = None) -> dict:
    """Diagnostics of one sequence (MOT (N, 10) arrays; ``image_size=(h, w)`` enables the
    out-of-view test). Returns plain data: ``events`` (one dict per IDSW/Frag), ``causes``
    (counts per kind and cause) and ``by_occlusion`` (per visibility bin: gt boxes, matched,
    IDSW, Frag)."""
    cfg = cfg or DiagnosticsConfig()
    gt = gt[gt[:, 6] != 0]
    gt_f, pr_f = split_frames(gt), split_frames(pred)
    last = max([*gt_f.keys(), *pr_f.keys()], default=0)
    empty = np.zeros((0, 10))
    acc = mm.MOTAccumulator(auto_id=True)
    # per (frame, gt id): box, visibility, max IoU with any other gt object
    info: dict[tuple[int, int], tuple[float, float, float]] = {}
    for f in range(1, last + 1):
        g, p = gt_f.get(f, empty), pr_f.get(f, empty)
        d = iou_matrix(g[:, X:X + 4], p[:, X:X + 4], max_iou=1 - _MATCH_IOU)
        acc.update(g[:, ID].astype(int).tolist(), p[:, ID].astype(int).tolist(), d)
        if len(g):
            gg = 1.0 - iou_matrix(g[:, X:X + 4], g[:, X:X + 4])
            np.fill_diagonal(gg, 0.0)
            cross = gg.max(axis=1) if len(g) > 1 else np.zeros(1)
            for k, row in enumerate(g):
                info[(f, int(row[ID]))] = (float(row[VIS]) if row[VIS] >= 0 else np.nan,
                                           _inside_fraction(row[X:X + 4], image_size), float(cross[k]))
    ev = acc.mot_events
    ev = ev[ev.Type.isin(["MATCH", "SWITCH", "MISS"])]
    frames = ev.index.get_level_values(0).to_numpy() + 1
    types = ev.Type.to_numpy()
    oids = ev.OId.to_numpy()
    hids = ev.HId.to_numpy()

    def cause(oid: int, start: int, end: int) -> str:
        window = [info.get((f, oid)) for f in range(start, end + 1)]
        if any(w is None or w[1] < cfg.inside_fraction for w in window):
            return "re-entry"
        vis = np.array([w[0] for w in window])
        if np.any(vis[np.isfinite(vis)] < cfg.occlusion_visibility):
            return "occlusion"
        if max(w[2] for w in window) >= cfg.crossing_iou:
            return "crossing"
        return "other"

    events, strata_events = [], []
    for oid in np.unique(oids.astype(int)):
        sel = np.nonzero(oids == oid)[0]
        fr, ty, hy = frames[sel], types[sel], hids[sel]
        tracked = np.nonzero(ty != "MISS")[0]
        last_tracked = None
        prev_hyp = np.nan
        for j in range(len(sel)):
            if ty[j] == "SWITCH":
                start = int(fr[last_tracked]) if last_tracked is not None else int(fr[j])
                events.append({"kind": "IDSW", "frame": int(fr[j]), "gt_id": int(oid),
                               "from_track": float(prev_hyp), "to_track": float(hy[j]),
                               "cause": cause(int(oid), start, int(fr[j]))})
            if ty[j] == "MISS" and len(tracked) and tracked[0] < j <= tracked[-1] and ty[j - 1] != "MISS":
                k = j
                while ty[k] == "MISS":
                    k += 1
                events.append({"kind": "Frag", "frame": int(fr[j]), "gt_id": int(oid),
                               "from_track": float(prev_hyp), "to_track": float(hy[k]),
                               "cause": cause(int(oid), int(fr[j - 1]), int(fr[k]))})
            if ty[j] != "MISS":
                last_tracked, prev_hyp = j, hy[j]
    causes = {kind: {c: sum(1 for e in events if e["kind"] == kind and e["cause"] == c) for c in CAUSES}
              for kind in ("IDSW", "Frag")}
    # occlusion strata over gt boxes
    edges = (0.0, *cfg.occlusion_bins, 1.0 + 1e-9)
    vis = np.array([info[(int(f), int(o))][0] for f, o in zip(frames, oids)])
    ev_frame = {(e["frame"], e["gt_id"]): e["kind"] for e in events}
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (vis >= lo) & (vis < hi)
        keys = [(int(f), int(o)) for f, o in zip(frames[m], oids[m])]
        rows.append({"visibility_min": float(lo), "visibility_max": float(min(hi, 1.0)),
                     "gt_boxes": int(m.sum()), "matched": int((types[m] != "MISS").sum()),
                     "IDSW": sum(ev_frame.get(k) == "IDSW" for k in keys),
                     "Frag": sum(ev_frame.get(k) == "Frag" for k in keys)})
    return {"events": events, "causes": causes, "by_occlusion": rows}


def combine_diagnostics(parts: list[dict]) -> dict:
    """Sum cause counts and strata over sequences (events are concatenated)."""
    causes = {kind: {c: sum(p["causes"][kind][c] for p in parts) for c in CAUSES} for kind in ("IDSW", "Frag")}
    strata = []
    for i, row in enumerate(parts[0]["by_occlusion"] if parts else []):
        s = dict(row)
        for k in ("gt_boxes", "matched", "IDSW", "Frag"):
            s[k] = sum(p["by_occlusion"][i][k] for p in parts)
        strata.append(s)
    for s in strata:
        s["recall"] = 100.0 * s["matched"] / s["gt_boxes"] if s["gt_boxes"] else float("nan")
    return {"events": [e for p in parts for e in p["events"]], "causes": causes, "by_occlusion": strata}
