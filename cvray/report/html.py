"""One self-contained HTML page for a run: tables, plots and failure galleries, images inlined.

Reads only what the run wrote (manifest, Parquet tables, PNG artifacts), so a report can be
rebuilt any time from storage. Sections appear when their tables exist: evaluation (COCO stats,
per-class AP, error buckets, confusion, PR and confidence curves, failure gallery), predictions
(counts per class, score histogram), issues.
"""
from __future__ import annotations

import base64
import html
import io
import json
import logging
from typing import Any

import numpy as np

from cvray.io import storage

__all__ = ["build_report", "ReportError", "write_report"]

log = logging.getLogger(__name__)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;max-width:1200px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;border-bottom:1px solid #dde;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:18px 0 6px} .meta{color:#556;font-size:13px}
table{border-collapse:collapse;font-size:12px;margin:6px 0} th,td{border:1px solid #dde;padding:3px 7px;text-align:right}
th{background:#f3f5fa} td.l,th.l{text-align:left} .grid{display:flex;flex-wrap:wrap;gap:10px}
.grid figure{margin:0;text-align:center;font-size:11px;color:#556} img{max-width:100%}
details{margin:8px 0} pre{background:#f6f8fa;padding:8px;font-size:11px;overflow:auto;max-height:400px}
.warn{color:#a40}
"""


class ReportError(LookupError):
    """The run cannot be reported (no manifest); names the URI."""


def _img(data: bytes, alt: str = "", width: int | None = None) -> str:
    w = f' width="{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}"{w} src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if np.isnan(v):
            return "–"
        return f"{v:.4f}" if abs(v) < 1e4 else f"{v:.4g}"
    return html.escape(str(v))


def _html_table(rows: list[dict], cols: list[str] | None = None, limit: int = 200) -> str:
    if not rows:
        return "<p class=meta>(empty)</p>"
    cols = cols or list(rows[0])
    head = "".join(f"<th class=l>{html.escape(c)}</th>" if i == 0 else f"<th>{html.escape(c)}</th>"
                   for i, c in enumerate(cols))
    body = []
    for r in rows[:limit]:
        cells = "".join(f"<td class=l>{_fmt(r.get(c))}</td>" if i == 0 or isinstance(r.get(c), str)
                        else f"<td>{_fmt(r.get(c))}</td>" for i, c in enumerate(cols))
        body.append(f"<tr>{cells}</tr>")
    more = f"<p class=meta>{len(rows) - limit} more rows in the Parquet table</p>" if len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _read(run_uri: str, name: str) -> list[dict] | None:
    folder = storage.join(run_uri, "tables", name)
    if not storage.list_files(folder, suffix=".parquet"):
        return None
    return storage.read_table_dir(folder).to_pylist()


def _artifacts(run_uri: str, prefix: str) -> list[tuple[str, bytes]]:
    base = storage.join(run_uri, "artifacts")
    out = []
    for uri in storage.list_files(storage.join(base, prefix), suffix=".png"):
        out.append((uri[len(base) + 1:], storage.read_bytes(uri)))
    return out


def _bar_png(labels: list[str], values: list[float], title: str, xlabel: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 0.28 * len(labels) + 1.0))
    ax.barh(range(len(labels)), values, color="#4a78c2")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _hist_png(values: np.ndarray, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    ax.hist(values, bins=20, range=(0, 1), color="#4a78c2")
    ax.set_xlabel("score")
    ax.set_title(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _eval_section(run_uri: str, parts: list[str]) -> None:
    stats = _read(run_uri, "coco_stats")
    if stats is None:
        return
    parts.append("<h2>Evaluation</h2>")
    parts.append("<h3>COCO summary</h3>" + _html_table(stats, ["stat", "value", "iou_type"]))
    per_class = _read(run_uri, "per_class") or []
    parts.append("<h3>Per-class AP</h3>" + _html_table(sorted(per_class, key=lambda r: r["category_id"]),
                                                       ["name", "category_id", "AP", "AP50", "VOC_AP50"]))
    summ = _read(run_uri, "error_summary")
    if summ:
        parts.append("<h3>Error buckets (TIDE-style; dAP = AP50 gained if fixed)</h3>")
        parts.append(_img(_bar_png([r["type"] for r in summ], [r["dAP"] for r in summ], "dAP by error type",
                                   "AP50 gained"), "error buckets"))
        parts.append(_html_table(summ, ["type", "count", "dAP"]))
        size = _read(run_uri, "error_per_size") or []
        parts.append("<h4>Per object size</h4>" + _html_table(size, ["size", "type", "count", "dAP"]))
        pc = [r for r in (_read(run_uri, "error_per_class") or []) if r["count"]]
        parts.append("<details><summary>Per class</summary>" + _html_table(pc, ["category_id", "type", "count", "dAP"])
                     + "</details>")
    plots = dict(_artifacts(run_uri, "plots"))
    if "plots/confusion.png" in plots:
        parts.append("<h3>Confusion matrix (rows true, columns predicted)</h3>" + _img(plots["plots/confusion.png"], "confusion"))
    if "plots/confidence_all.png" in plots:
        parts.append("<h3>Precision / recall / F1 vs confidence</h3>" + _img(plots["plots/confidence_all.png"], "confidence"))
    pr = sorted((k, v) for k, v in plots.items() if k.startswith("plots/pr_"))
    if pr:
        parts.append("<h3>PR curves per class</h3><div class=grid>"
                     + "".join(f"<figure>{_img(v, k, 300)}</figure>" for k, v in pr) + "</div>")
    fails = _artifacts(run_uri, "failures")
    if fails:
        parts.append("<h3>Failure gallery (top examples per error type)</h3>")
        by_type: dict[str, list] = {}
        for k, v in fails:
            by_type.setdefault(k.split("/")[1], []).append((k, v))
        for t, items in sorted(by_type.items()):
            parts.append(f"<h4>{html.escape(t)}</h4><div class=grid>"
                         + "".join(f"<figure>{_img(v, k)}</figure>" for k, v in items) + "</div>")


def _predictions_section(run_uri: str, parts: list[str]) -> None:
    preds = _read(run_uri, "predictions")
    if preds is None:
        return
    parts.append("<h2>Predictions</h2>")
    labels = np.concatenate([np.asarray(r["labels"], np.int64) for r in preds] or [np.zeros(0, np.int64)])
    scores = np.concatenate([np.asarray(r["scores"], float) for r in preds] or [np.zeros(0)])
    n_masks = sum(len(r["masks"]) for r in preds if r.get("masks"))
    parts.append(_html_table([{"images": len(preds), "detections": int(len(labels)),
                               "per_image": float(len(labels) / max(1, len(preds))), "masks": n_masks}]))
    if len(labels):
        ids, counts = np.unique(labels, return_counts=True)
        parts.append("<div class=grid>" + _img(_bar_png([str(i) for i in ids], counts.tolist(),
                                                        "detections per category", "count"), "per class")
                     + _img(_hist_png(scores, "score distribution"), "scores") + "</div>")


def _train_section(run_uri: str, parts: list[str]) -> None:
    """Learning curves (loss parts, lr, validation AP, gradient norm) and the evaluation rows."""
    curves = storage.join(run_uri, "artifacts", "learning_curves.png")
    if not storage.exists(curves):
        return
    parts.append("<h2>Training</h2>" + _img(storage.read_bytes(curves), "learning curves", width=1100))
    evals = _read(run_uri, "eval_metrics")
    if evals:
        keys = [k for k in ("iteration", "bbox_AP", "bbox_AP50", "segm_AP", "segm_AP50", "mIoU") if k in evals[0]]
        parts.append("<h3>Validation</h3>" + _html_table(evals, keys))


def _detect_track_section(summary: dict, parts: list[str]) -> None:
    """The demo's capstone: the trained model's tracks on the synthetic videos, per sequence."""
    cap = summary.get("detect_track")
    if not isinstance(cap, dict) or "per_sequence" not in cap:
        return
    parts.append("<h2>Detect → segment → track (the trained model on the synthetic videos)</h2>"
                 + _html_table(cap["per_sequence"])
                 + "<p class=meta>review videos: " + ", ".join(html.escape(v) for v in cap.get("review_videos", []))
                 + "</p>")
    ref = summary.get("track")
    if isinstance(ref, dict) and "HOTA" in ref:
        parts.append("<p class=meta>tracker-only reference (the generator's noisy detections): HOTA "
                     f"{_fmt(ref.get('HOTA'))}, IDF1 {_fmt(ref.get('IDF1'))}, MOTA {_fmt(ref.get('MOTA'))}</p>")


def build_report(run_uri: str) -> str:
    """The HTML page (a string) for the run at ``run_uri``."""
    man_uri = storage.join(run_uri, "manifest.json")
    if not storage.exists(man_uri):
        raise ReportError(f"{run_uri}: not a committed run (no manifest.json)")
    m = storage.read_json(man_uri)
    parts = [f"<h1>cvray run {html.escape(m.get('run_id', ''))}</h1>",
             f"<p class=meta>command <b>{html.escape(str(m.get('command')))}</b> · status "
             f"<b>{html.escape(str(m.get('status')))}</b> · started {html.escape(str(m.get('started_at')))} · "
             f"ended {html.escape(str(m.get('ended_at')))} · git {html.escape(str((m.get('git') or {}).get('commit', ''))[:12])}"
             f"</p><p class=meta>{html.escape(str(m.get('argv', '')))}</p>"]
    summary = {k: v for k, v in (m.get("summary") or {}).items() if not isinstance(v, (dict, list))}
    if summary:
        parts.append("<h2>Summary</h2>" + _html_table([{"key": k, "value": v} for k, v in summary.items()]))
    _train_section(run_uri, parts)
    _detect_track_section(m.get("summary") or {}, parts)
    _eval_section(run_uri, parts)
    _predictions_section(run_uri, parts)
    issues = _read(run_uri, "issues")
    if issues:
        parts.append(f"<h2 class=warn>Issues ({len(issues)})</h2>"
                     + _html_table(issues, ["rule", "severity", "stage", "image_id", "file", "message"]))
    parts.append("<details><summary>Resolved config and environment</summary><pre>"
                 + html.escape(json.dumps({"config": m.get("config"), "environment": m.get("environment"),
                                           "dataset": m.get("dataset"), "ray": m.get("ray")},
                                          indent=1, default=str)) + "</pre></details>")
    return ("<!doctype html><html><head><meta charset=utf-8><title>cvray "
            f"{html.escape(m.get('run_id', ''))}</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")


def write_report(run_uri: str) -> tuple[str, bytes]:
    """Build the page and store it as the run's ``artifacts/report.html``; returns (URI, bytes)."""
    data = build_report(run_uri).encode()
    target = storage.join(run_uri, "artifacts", "report.html")
    storage.write_bytes(target, data)
    return target, data
