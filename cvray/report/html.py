"""One self-contained HTML page for a run, or for two runs side by side; images inlined.

Reads only what the run wrote (manifest, Parquet tables, PNG artifacts, review videos), so a report
can be rebuilt any time from storage. One section per stage that ran, in order, each present when
its tables / artifacts / summary exist:

* dataset: per-split summary, class counts, the dataset card, the overlay audit grids;
* training: the last validation, curves of every loss part, lr, gradient norm and validation
  metrics (from ``train_curves`` / ``eval_metrics``), the trainer's ``learning_curves.png``,
  per-class AP (or IoU) of the last evaluation, the best checkpoint;
* evaluation (``cvray eval --save``): COCO stats, per-class AP, error buckets, confusion, PR and
  confidence curves, failure gallery;
* predictions: counts per class, score histogram;
* tracking: the demo's capstone rows, per-sequence TrackEval and ``devkit_*`` metrics, ID-switch
  causes when a summary carries diagnostics, sequences, a frame strip of each review video with a
  link to the mp4;
* issues, then the resolved config and environment.

The demo's manifest summary holds one dict per stage (read per stage here) next to keys the
stages merged in flat, where a later stage overwrites an earlier one's; those are listed apart.
:func:`build_compare` puts two runs' numbers side by side, overlays their training curves and
lists the config keys (dotted) that differ.
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
from cvray.report.figures import plt as _plt
from cvray.report.figures import png as _png

__all__ = ["build_compare", "build_report", "ReportError", "write_compare", "write_report"]

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


# -- stages ---------------------------------------------------------------------------------------

# which section a command's summary belongs to; the demo nests one summary dict per stage instead
_COMMAND_SECTION = {"data synth": "dataset", "data ingest": "dataset", "data card": "dataset",
                    "data split": "dataset", "data convert": "dataset", "validate": "dataset",
                    "train": "training", "eval": "evaluation", "predict": "predictions",
                    "track": "tracking", "track eval": "tracking", "tune": "tune",
                    "robustness": "robustness", "calibrate": "calibration"}
_STAGE_SECTION = {"data": "dataset", "ingest": "dataset", "card": "dataset", "validate": "dataset",
                  "train": "training", "eval": "evaluation", "predict": "predictions",
                  "detect_track": "tracking", "track": "tracking"}
_STAGE_TITLE = {"data": "synthetic data", "ingest": "ingest (Ray Data)", "card": "dataset card",
                "train": "training", "detect_track": "detect → segment → track (the trained model on the videos)",
                "track": "tracker only (the generator's noisy detections)"}
_TRACKEVAL = ("HOTA", "DetA", "AssA", "LocA", "IDF1", "IDP", "IDR", "MOTA", "MOTP", "IDSW", "Frag", "MT", "PT",
              "ML", "FP", "FN")
_DEVKIT = ("MOTA", "MOTP", "IDSW", "Frag", "MT", "PT", "ML", "FP", "FN")


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (``train.optim.lr``); lists stay values."""
    if not isinstance(d, dict):
        return {prefix: d} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _kv_table(d: dict) -> str:
    rows = [{"key": k, "value": v if not isinstance(v, (list, dict)) else json.dumps(v, default=str)}
            for k, v in _flatten(d).items()]
    return _html_table(rows, ["key", "value"])


def _stage_summaries(m: dict) -> tuple[dict[str, list[tuple[str, dict]]], dict]:
    """``({section: [(stage, summary dict), ...]}, flat leftovers)``.

    The demo stores one dict per stage (``data``, ``ingest``, ``train``, ``detect_track``, ``track``)
    next to keys the stages' own code merged in flat (where a later stage overwrites an earlier
    one's ``metrics``); only the per-stage dicts are attributed. Any other command's summary is
    its one stage's."""
    summary = m.get("summary") or {}
    by_section: dict[str, list[tuple[str, dict]]] = {}
    nested = {k: v for k, v in summary.items() if k in _STAGE_SECTION and isinstance(v, dict)}
    if m.get("command") == "demo" or (nested and m.get("command") not in _COMMAND_SECTION):
        for k, v in nested.items():
            by_section.setdefault(_STAGE_SECTION[k], []).append((k, v))
        rest = {k: v for k, v in summary.items() if k not in nested}
        return by_section, rest
    section = _COMMAND_SECTION.get(str(m.get("command")))
    if section and summary:
        by_section[section] = [(f"cvray {m.get('command')}", summary)]
    return by_section, {} if section else summary


def _stage_tables(stages: list[tuple[str, dict]], skip: tuple[str, ...] = ()) -> str:
    """One collapsible key/value table per stage summary; a single command's scalars are already in
    the page's Summary, so only its nested values are listed."""
    out = []
    for name, d in stages:
        nested_only = name.startswith("cvray ")
        d = {k: v for k, v in d.items() if k not in skip and not (nested_only and not isinstance(v, (dict, list)))}
        if not d:
            continue
        title = _STAGE_TITLE.get(name, name) + (" (nested values)" if nested_only else "")
        opened = " open" if len(stages) == 1 and not nested_only else ""
        out.append(f"<details{opened}><summary>summary: {html.escape(title)}"
                   f"</summary>{_kv_table(d)}</details>")
    return "".join(out)


def _dataset_section(run_uri: str, parts: list[str], stages: list[tuple[str, dict]]) -> None:
    summ, counts = _read(run_uri, "dataset_summary"), _read(run_uri, "class_counts")
    card_uri = storage.join(run_uri, "artifacts", "card.md")
    card = storage.read_bytes(card_uri).decode(errors="replace") if storage.exists(card_uri) else None
    overlays = _artifacts(run_uri, "overlays")
    if not (summ or counts or card or overlays or stages):
        return
    parts.append("<h2 id=dataset>Dataset</h2>" + _stage_tables(stages))
    if summ:
        parts.append("<h3>Summary per split</h3>" + _html_table(summ, [c for c in (
            "split", "images", "images_ok", "images_failed", "annotations", "crowd", "small", "medium", "large",
            "objects_per_image_mean", "objects_per_image_max", "mean_height", "mean_width") if c in summ[0]]))
    if counts:
        parts.append("<h3>Class counts</h3>")
        per_cat: dict[int, int] = {}
        for r in counts:
            per_cat[r["category_id"]] = per_cat.get(r["category_id"], 0) + int(r["instances"] or 0)
        cats = sorted(per_cat)
        parts.append(_img(_bar_png([str(c) for c in cats], [per_cat[c] for c in cats],
                                   "instances per category (all splits)", "instances"), "class counts"))
        parts.append(_html_table(sorted(counts, key=lambda r: (str(r["split"]), r["category_id"])),
                                 ["split", "category_id", "instances", "images"]))
    if card:
        parts.append("<h3>Dataset card</h3><details open><summary>card.md</summary><pre>"
                     + html.escape(card) + "</pre></details>")
    if overlays:
        parts.append("<h3>Overlay audit grid</h3><div class=grid>" + "".join(
            f"<figure>{_img(v, k)}<figcaption>{html.escape(k)}</figcaption></figure>" for k, v in overlays)
                     + "</div>")


_SKIP_CURVE = {"iteration", "lr", "grad_norm", "images", "positives", "data_time", "time", "images_per_s",
               "skipped"}


def _loss_parts(curves: list[dict]) -> list[str]:
    return [k for k in curves[0] if k not in _SKIP_CURVE] if curves else []


def _val_keys(evals: list[dict]) -> list[str]:
    if not evals:
        return []
    return [k for k in evals[0] if k.endswith(("_AP", "_AP50")) or k in ("mIoU", "mDice", "pixel_acc")]


def _series(rows: list[dict], key: str) -> tuple[list, list]:
    pts = [(r["iteration"], r[key]) for r in rows if r.get(key) is not None and np.isfinite(r[key])]
    return [p[0] for p in pts], [p[1] for p in pts]


def _curves_png(runs: list[tuple[str, list[dict], list[dict]]]) -> bytes | None:
    """Every loss part, lr, gradient norm and validation metric vs iteration; one line style per run."""
    plt = _plt()
    losses = list(dict.fromkeys(k for _, c, _ in runs for k in _loss_parts(c)))
    vals = list(dict.fromkeys(k for _, _, e in runs for k in _val_keys(e)))
    panels = [("loss", k) for k in losses] + [("curve", "lr"), ("curve", "grad_norm")] + [("val", k) for k in vals]
    panels = [p for p in panels if any(_series(c if p[0] != "val" else e, p[1])[0] for _, c, e in runs)]
    if not panels:
        return None
    cols = 4
    rows_n = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 2.4 * rows_n), squeeze=False)
    styles = ["-", "--", ":", "-."]
    colours = ["#4a78c2", "#d0652d", "#3b9a5a", "#8a4fb0"]
    for ax, (kind, key) in zip(axes.flat, panels):
        for i, (label, curves, evals) in enumerate(runs):
            x, y = _series(evals if kind == "val" else curves, key)
            if x:
                ax.plot(x, y, styles[i % 4], color=colours[i % 4], marker="o" if kind == "val" or len(x) < 3 else None,
                        markersize=3, label=label, linewidth=1.2)
        ax.set_title(("val " if kind == "val" else "") + key, fontsize=9)
        ax.tick_params(labelsize=7)
        if kind == "curve" and key == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        if len(runs) > 1:
            ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def _training_section(run_uri: str, parts: list[str], stages: list[tuple[str, dict]],
                      fallback: dict | None = None) -> None:
    """Curves of every loss part, lr and validation metrics; per-class AP; the best checkpoint."""
    curves, evals = _read(run_uri, "train_curves") or [], _read(run_uri, "eval_metrics") or []
    lc_uri = storage.join(run_uri, "artifacts", "learning_curves.png")
    lc = storage.read_bytes(lc_uri) if storage.exists(lc_uri) else None
    if not (curves or evals or lc or stages):
        return
    parts.append("<h2 id=training>Training</h2>")
    evals = sorted(evals, key=lambda r: r["iteration"])
    if evals:
        last = evals[-1]
        main_keys = [k for k in ("bbox_AP", "bbox_AP50", "segm_AP", "segm_AP50", "mIoU", "mDice", "pixel_acc")
                     if last.get(k) is not None]
        parts.append(f"<h3>Validation at iteration {last['iteration']} (the last evaluation)</h3>"
                     + _html_table([{k: last[k] for k in main_keys}], main_keys))
    best = _best_checkpoint(run_uri, stages, fallback or {})
    if best:
        parts.append(f"<p class=meta>best checkpoint <code>{html.escape(best['uri'])}</code>"
                     + (f" · iteration {best['iteration']}" if best.get("iteration") is not None else "")
                     + (f" · {html.escape(best['metric'])} {_fmt(best['value'])}" if best.get("metric") else "")
                     + "</p>")
    png = _curves_png([("run", sorted(curves, key=lambda r: r["iteration"]), evals)]) if (curves or evals) else None
    if png:
        parts.append("<h3>Curves (every loss part, lr, gradient norm, validation metrics)</h3>"
                     + _img(png, "training curves", width=1100))
    if lc:
        parts.append("<details><summary>learning_curves.png (written by the trainer)</summary>"
                     + _img(lc, "learning curves", width=1100) + "</details>")
    if evals:
        keys = ["iteration", *[k for k in _val_keys(evals)], "eval_time"]
        parts.append("<h3>Evaluations</h3>" + _html_table(evals, [k for k in keys if k in evals[0]]))
    _per_class_ap(run_uri, parts)
    parts.append(_stage_tables(stages))


def _best_checkpoint(run_uri: str, stages: list[tuple[str, dict]], fallback: dict) -> dict | None:
    """The best checkpoint's URI, iteration and metric (``checkpoints/best.json`` + the summary;
    ``fallback``: the demo's flat keys, which only the trainer writes ``best_metric_name`` into)."""
    summ = next((d for _, d in stages if "best_checkpoint" in d or "checkpoint" in d), {})
    meta_uri = storage.join(run_uri, "checkpoints", "best.json")
    meta = storage.read_json(meta_uri) if storage.exists(meta_uri) else {}
    uri = meta.get("uri") or summ.get("best_checkpoint") or summ.get("checkpoint")
    if not uri:
        return None
    name = summ.get("best_metric_name") or meta.get("metric_name") or fallback.get("best_metric_name")
    value = summ.get("best_metric")
    if name is None and isinstance(summ.get("best"), dict) and summ["best"]:
        name, value = next(iter(summ["best"].items()))
    if name and value is None:
        value = (meta.get("metrics") or {}).get(name)
    return {"uri": str(uri), "iteration": meta.get("iteration"), "metric": name, "value": value}


def _per_class_ap(run_uri: str, parts: list[str]) -> None:
    for table, metrics in (("per_class_ap", ("AP", "AP50")), ("per_class_iou", ("IoU", "Dice"))):
        rows = _read(run_uri, table)
        if not rows:
            continue
        it = max(r["iteration"] for r in rows)
        pivot: dict[int, dict] = {}
        types = sorted({r["iou_type"] for r in rows})
        for r in rows:
            if r["iteration"] != it:
                continue
            p = pivot.setdefault(r["category_id"], {"name": r["name"], "category_id": r["category_id"]})
            for k in metrics:
                p[f"{r['iou_type']} {k}"] = r[k]
        cols = ["name", "category_id", *[f"{t} {k}" for t in types for k in metrics]]
        parts.append(f"<h3>Per-class {'/'.join(metrics)} at iteration {it}</h3>"
                     + _html_table([pivot[c] for c in sorted(pivot)], cols))


def _track_metrics_table(rows: list[dict]) -> str:
    te = [k for k in _TRACKEVAL if k in rows[0]]
    dk = [k for k in _DEVKIT if f"devkit_{k}" in rows[0]]
    head1 = ("<tr><th class=l rowspan=2>sequence</th>"
             f"<th colspan={len(te)}>TrackEval 1.3 (MOTChallenge today)</th>"
             + (f"<th colspan={len(dk)}>devkit (old MOTChallenge devkit, py-motmetrics)</th>" if dk else "") + "</tr>")
    head2 = "<tr>" + "".join(f"<th>{k}</th>" for k in te) + "".join(f"<th>devkit_{k}</th>" for k in dk) + "</tr>"
    body = []
    for r in sorted(rows, key=lambda r: (r["sequence"] == "combined", r["sequence"])):
        cells = "".join(f"<td>{_fmt(r.get(k))}</td>" for k in te) + "".join(
            f"<td>{_fmt(r.get('devkit_' + k))}</td>" for k in dk)
        style = " style='font-weight:bold'" if r["sequence"] == "combined" else ""
        body.append(f"<tr{style}><td class=l>{_fmt(r['sequence'])}</td>{cells}</tr>")
    return f"<div style='overflow-x:auto'><table>{head1}{head2}{''.join(body)}</table></div>"


def _find_diagnostics(d: Any) -> dict | None:
    if isinstance(d, dict):
        if isinstance(d.get("diagnostics"), dict) and "causes" in d["diagnostics"]:
            return d["diagnostics"]
        for v in d.values():
            found = _find_diagnostics(v)
            if found:
                return found
    return None


def _frame_strip(uri: str, n: int = 5, height: int = 150) -> bytes | None:
    """``n`` frames spread over the video, side by side (PNG), or None when it cannot be read."""
    import os
    import tempfile

    import cv2

    try:
        data = storage.read_bytes(uri)
    except Exception as exc:  # noqa: BLE001 - a report never fails for one video
        log.warning("%s: cannot read the review video: %s", uri, exc)
        return None
    fd, path = tempfile.mkstemp(suffix=".mp4")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        cap = cv2.VideoCapture(path)
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        idx = sorted(set(np.linspace(0, max(total - 1, 0), n).astype(int).tolist())) if total else [0]
        frames = []
        for i in idx:
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            ok, f = cap.read()
            if ok and f is not None:
                w = max(1, int(round(f.shape[1] * height / f.shape[0])))
                frames.append(cv2.resize(f, (w, height), interpolation=cv2.INTER_AREA))
        cap.release()
    finally:
        os.unlink(path)
    if not frames:
        return None
    gap = np.full((height, 4, 3), 255, np.uint8)
    strip = np.hstack([x for f in frames for x in (f, gap)][:-1])
    ok, buf = cv2.imencode(".png", strip)
    return buf.tobytes() if ok else None


def _href(uri: str) -> str:
    if "://" in uri:
        return html.escape(uri)
    from pathlib import Path

    return html.escape(Path(uri).resolve().as_uri())


def _videos_html(videos: list[str]) -> str:
    out = []
    for v in videos[:6]:
        strip = _frame_strip(v)
        link = (f'<a href="{_href(v)}">{html.escape(v)}</a>' if not v.startswith("s3://")
                else f"<code>{html.escape(v)}</code>")
        pic = _img(strip, f"frames of {v}") if strip else "<p class=warn>(no frame could be read)</p>"
        out.append("<figure>" + pic
                   + f"<figcaption>{link}</figcaption></figure>")
    more = f"<p class=meta>{len(videos) - 6} more review videos</p>" if len(videos) > 6 else ""
    return "<h3>Review videos (frames spread over each; the link opens the mp4)</h3>" + "".join(out) + more


def _tracking_section(run_uri: str, parts: list[str], stages: list[tuple[str, dict]]) -> None:
    metrics, seqs = _read(run_uri, "metrics"), _read(run_uri, "sequences")
    if not (metrics or seqs or stages):
        return
    parts.append("<h2 id=tracking>Tracking</h2>")
    cap = next((d for n, d in stages if n == "detect_track" and "per_sequence" in d), None)
    if cap:
        parts.append("<h3>Detect → segment → track (the trained model on the synthetic videos)</h3>"
                     + _html_table(cap["per_sequence"]))
    if metrics:
        label = " (tracker only: the generator's noisy detections)" if cap else ""
        parts.append(f"<h3>Per-sequence metrics{label} (HOTA/MOTA/MOTP/IDF1 in %)</h3>" + _track_metrics_table(metrics)
                     + "<p class=meta>TrackEval MOTA…FN: CLEAR as TrackEval 1.3 computes it; devkit_*: the same "
                       "metrics in the old MOTChallenge devkit convention (docs/tracking.md, Metric conventions)</p>")
    diag = _find_diagnostics(dict(stages)) if stages else None
    if diag:
        rows = [{"kind": kind, **counts} for kind, counts in diag["causes"].items()]
        parts.append("<h3>ID switches and fragmentations by cause</h3>" + _html_table(rows))
        if diag.get("by_occlusion"):
            parts.append("<h4>Recall by gt visibility</h4>" + _html_table(diag["by_occlusion"]))
    if seqs:
        parts.append("<h3>Sequences</h3>" + _html_table(seqs, [c for c in (
            "sequence", "frames", "detections", "boxes", "tracks", "tracking_fps", "txt") if c in seqs[0]]))
    videos = [r["review_video"] for r in (seqs or []) if r.get("review_video")]
    if cap:
        videos = list(cap.get("review_videos") or []) + videos
    if videos:
        parts.append("<div class=grid>" + _videos_html(list(dict.fromkeys(videos))) + "</div>")
    parts.append(_stage_tables(stages, skip=("per_sequence",)))


def _tune_section(run_uri: str, parts: list[str], m: dict) -> None:
    """A search (``cvray tune``): the best trial, the three plots, the trials table."""
    trials = _read(run_uri, "trials")
    if not trials:
        return
    s = m.get("summary") or {}
    parts.append(f"<h2>Hyperparameter search ({len(trials)} trials, {html.escape(str(s.get('scheduler')))}, "
                 f"{html.escape(str(s.get('search')))})</h2>")
    best = s.get("best")
    if best:
        resume = f" · resume: <code>{html.escape(str(s['resume']))}</code>" if s.get("resume") else ""
        parts.append(f"<p>best trial <b>{html.escape(str(best.get('trial_id')))}</b> ({html.escape(str(s.get('metric')))} "
                     f"{_fmt(best.get(s.get('metric')))}): <code>cvray train --config "
                     f"{html.escape(str(best.get('best_config')))}</code>{resume}</p>"
                     + _kv_table(best.get("config") or {}))
    for name, alt in (("curves", "metric per trial, ASHA rungs dashed"), ("params", "parameters vs metric"),
                      ("best_so_far", "best so far vs wall time")):
        uri = storage.join(run_uri, "artifacts", "tune", f"{name}.png")
        if storage.exists(uri):
            parts.append(_img(storage.read_bytes(uri), alt))
    cols = ["trial_id", "status", "stop_rung", "iterations", "best_metric", "last_metric", "wall_s", "sampled"]
    parts.append(_html_table(trials, cols))


def _tracking_robustness_section(run_uri: str, parts: list[str], m: dict) -> None:
    """A MOT suite: per detector HOTA / IDF1 P / mPC / rPC, the plots, one row per cell."""
    rows = _read(run_uri, "tracking_robustness")
    if not rows:
        return
    s = m.get("summary") or {}
    parts.append(f"<h2>Tracking robustness ({len(rows)} cells, model {html.escape(str(s.get('model')))}, "
                 f"{s.get('sequences')} sequences)</h2>")
    head = []
    for det, d in sorted((s.get("tracking") or {}).items()):
        for metric in ("HOTA", "IDF1"):
            v = d.get(metric) or {}
            head.append({"detector": det, "metric": metric, "P": v.get("P"), "mPC": v.get("mPC"), "rPC": v.get("rPC"),
                         "complete grid": v.get("complete")})
    if head:
        parts.append(_html_table(head))
    for uri in storage.list_files(storage.join(run_uri, "artifacts", "robustness"), suffix=".png"):
        parts.append(_img(storage.read_bytes(uri), uri.rsplit("/", 1)[-1]))
    cols = ["detector", "condition", "family", "severity", "HOTA", "IDF1", "IDSW", "bitrate_kbps", "psnr_db", "wall_s"]
    parts.append(_html_table(sorted(rows, key=lambda r: (r["detector"], r["kind"] != "clean", r["condition"],
                                                         r["severity"])), cols))


def _robustness_section(run_uri: str, parts: list[str], m: dict) -> None:
    """A suite (``cvray robustness``): P / mPC / rPC, the plots, one row per cell."""
    rows = _read(run_uri, "robustness")
    if not rows:
        return _tracking_robustness_section(run_uri, parts, m)
    s = m.get("summary") or {}
    parts.append(f"<h2>Robustness ({len(rows)} cells, model {html.escape(str(s.get('model')))})</h2>")
    head = []
    for metric in ("bbox_AP", "segm_AP"):
        d = s.get(metric)
        if isinstance(d, dict):
            head.append({"metric": metric, "P": d.get("P"), "mPC": d.get("mPC"), "rPC": d.get("rPC"),
                         "complete grid": d.get("complete"), "benchmark cells": d.get("benchmark_cells")})
    if head:
        parts.append(_html_table(head))
    for uri in storage.list_files(storage.join(run_uri, "artifacts", "robustness"), suffix=".png"):
        parts.append(_img(storage.read_bytes(uri), uri.rsplit("/", 1)[-1]))
    cols = ["corruption", "family", "severity", "images", "failed_images", "bbox_AP", "bbox_AP50", "segm_AP",
            "segm_AP50", "wall_s"]
    parts.append(_html_table(sorted(rows, key=lambda r: (r["family"] != "clean", r["corruption"], r["severity"])), cols))


def _calibration_section(run_uri: str, parts: list[str], m: dict) -> None:
    """``cvray calibrate``: every eval slice's errors before / after, the clean slice's diagrams."""
    rows = [r for r in (_read(run_uri, "calibration") or [])
            if r["role"] == "eval" and r["category_id"] is None]
    if not rows:
        return
    s = m.get("summary") or {}
    parts.append(f"<h2>Calibration (fitted on {html.escape(str(s.get('fit_split')))}, evaluated on "
                 f"{html.escape(str(s.get('eval_split')))}; IoU {s.get('iou_thr')}, "
                 f"score &ge; {s.get('score_thr')})</h2>")
    if s.get("split_note"):
        parts.append(f"<p class=warn>{html.escape(str(s['split_note']))}</p>")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    table: dict[tuple, dict] = {}
    for r in rows:
        key = (r["corruption"] != "clean", r["corruption"], r["severity"], r["metric"])
        table.setdefault(key, {"slice": f"{r['corruption']}/{r['severity']}", "metric": r["metric"],
                               "n": r["n"]})[r["method"]] = r["value"]
    parts.append(_html_table([table[k] for k in sorted(table)], ["slice", "metric", "n", *methods]))
    folder = storage.join(run_uri, "artifacts", "calibration")
    saved = (s.get("saved") or {}).get("method")
    for uri in storage.list_files(folder, suffix=".png"):
        name = uri.rsplit("/", 1)[-1]
        if "__clean__" in uri and name in ("uncalibrated_ece.png", f"{saved}_ece.png", "uncalibrated_laece.png",
                                           f"{saved}_laece.png"):
            parts.append(_img(storage.read_bytes(uri), name, width=360))


def _policy_section(run_uri: str, parts: list[str], m: dict) -> None:
    """``cvray calibrate --policy``: the act / observe / abstain policy's rates and precision / recall
    per slice (clean, each corruption, families, low light) against its targets, and the plot."""
    rows = [r for r in (_read(run_uri, "policy_slices") or []) if r["category_id"] is None]
    if not rows:
        return
    p = (m.get("summary") or {}).get("policy") or {}
    t = p.get("targets") or {}
    parts.append(f"<h2>Decision policy (chosen on the fit split, {html.escape(str(p.get('scores')))} scores; "
                 f"act precision &ge; {t.get('act_precision')}, observe recall &ge; {t.get('observe_recall')})</h2>")
    never = [c for c, v in (p.get("thresholds") or {}).items() if v.get("t_act") is None]
    if never:
        parts.append(f"<p class=warn>classes that never act (target unreachable on the fit split): "
                     f"{html.escape(', '.join(never))}</p>")
    order = {"fit": 0, "eval": 1}
    rows = sorted(rows, key=lambda r: (order.get(r["role"], 2), r["corruption"] == "*", r["corruption"] != "clean",
                                       r["family"], r["corruption"], r["severity"] or 0))
    parts.append(_html_table(rows, ["role", "split", "corruption", "severity", "family", "detections", "act_rate",
                                    "observe_rate", "abstain_rate", "act_precision", "seen_recall",
                                    "act_precision_met", "seen_recall_met"]))
    for uri in storage.list_files(storage.join(run_uri, "artifacts", "policy"), suffix=".png"):
        parts.append(_img(storage.read_bytes(uri), uri.rsplit("/", 1)[-1]))


def _git(m: dict) -> str:
    g = m.get("git") or {}
    sha = str(g.get("sha") or g.get("commit") or "")
    return sha[:12] + (" (dirty)" if sha and g.get("dirty") else "")


def _header(m: dict) -> list[str]:
    return [f"<h1>cvray run {html.escape(m.get('run_id', ''))}</h1>",
            f"<p class=meta>command <b>{html.escape(str(m.get('command')))}</b> · status "
            f"<b>{html.escape(str(m.get('status')))}</b> · started {html.escape(str(m.get('started_at')))} · "
            f"ended {html.escape(str(m.get('ended_at')))} · git <code>{html.escape(_git(m))}</code>"
            f"</p><p class=meta>{html.escape(str(m.get('argv', '')))}</p>"
            + (f"<p class=warn>error: {html.escape(str(m['error']))}</p>" if m.get("error") else "")]


def _manifest(run_uri: str) -> dict:
    man_uri = storage.join(run_uri, "manifest.json")
    if not storage.exists(man_uri):
        raise ReportError(f"{run_uri}: not a committed run (no manifest.json)")
    return storage.read_json(man_uri)


def _page(title: str, parts: list[str]) -> str:
    return ("<!doctype html><html><head><meta charset=utf-8><title>"
            f"{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")


def build_report(run_uri: str) -> str:
    """The HTML page (a string) for the run at ``run_uri``: one section per stage that ran, in order."""
    m = _manifest(run_uri)
    parts = _header(m)
    by_section, rest = _stage_summaries(m)
    flat = {k: v for k, v in rest.items() if not isinstance(v, (dict, list))}
    if m.get("command") != "demo":  # a single command: its scalars on top, its nested values in its section
        own = (m.get("summary") or {}) if _COMMAND_SECTION.get(str(m.get("command"))) else flat
        scalars = {k: v for k, v in own.items() if not isinstance(v, (dict, list))}
        if scalars:
            parts.append("<h2>Summary</h2>" + _html_table([{"key": k, "value": v} for k, v in scalars.items()]))
    _dataset_section(run_uri, parts, by_section.get("dataset", []))
    _training_section(run_uri, parts, by_section.get("training", []), rest)
    _eval_section(run_uri, parts)
    _predictions_section(run_uri, parts)
    _tracking_section(run_uri, parts, by_section.get("tracking", []))
    _tune_section(run_uri, parts, m)
    _robustness_section(run_uri, parts, m)
    _calibration_section(run_uri, parts, m)
    _policy_section(run_uri, parts, m)
    from cvray.report.drift_section import drift_section

    drift_section(run_uri, parts, m, read=_read, table=_html_table, img=_img)
    issues = _read(run_uri, "issues")
    if issues:
        parts.append(f"<h2 class=warn>Issues ({len(issues)})</h2>"
                     + _html_table(issues, ["rule", "severity", "stage", "image_id", "file", "message"]))
    if m.get("command") == "demo" and rest:
        parts.append("<details><summary>Keys the stages also merged flat into the summary (a later stage "
                     "overwrites an earlier one's; the per-stage sections above are authoritative)</summary>"
                     + _kv_table({k: v for k, v in rest.items() if k not in ("report",)}) + "</details>")
    parts.append("<details><summary>Resolved config and environment</summary><pre>"
                 + html.escape(json.dumps({"config": m.get("config"), "environment": m.get("environment"),
                                           "dataset": m.get("dataset"), "ray": m.get("ray")},
                                          indent=1, default=str)) + "</pre></details>")
    return _page(f"cvray {m.get('run_id', '')}", parts)


# -- comparison -----------------------------------------------------------------------------------


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _run_metrics(run_uri: str, m: dict) -> dict[str, Any]:
    """The run's numbers under comparable names: last validation, COCO stats, tracking, summary."""
    out: dict[str, Any] = {}
    evals = sorted(_read(run_uri, "eval_metrics") or [], key=lambda r: r["iteration"])
    if evals:
        out.update({f"val {k}": v for k, v in evals[-1].items() if k != "eval_time" and v is not None})
    for r in _read(run_uri, "coco_stats") or []:
        out[f"eval {r['iou_type']} {r['stat']}"] = r["value"]
    for r in _read(run_uri, "metrics") or []:
        for k, v in r.items():
            if k != "sequence":
                out[f"track {r['sequence']} {k}"] = v
    by_section, rest = _stage_summaries(m)
    demo = m.get("command") == "demo"
    for section, stages in by_section.items():
        for name, d in stages:
            for k, v in (_flatten(d) if demo else d).items():  # a command's nested metrics are above
                if _numeric(v) and k not in ("worker_seed", "start_iteration"):
                    out[f"summary {name}.{k}" if demo else f"summary {k}"] = v
    return out


def build_compare(run_a: str, run_b: str) -> str:
    """One page comparing two runs: metrics side by side, training curves overlaid, config diff."""
    ma, mb = _manifest(run_a), _manifest(run_b)
    ia, ib = ma.get("run_id", "A"), mb.get("run_id", "B")
    parts = [f"<h1>cvray: {html.escape(ia)} vs {html.escape(ib)}</h1>"]
    head = [{"": "A", "run": ia, "command": ma.get("command"), "status": ma.get("status"), "git": _git(ma),
             "started": ma.get("started_at"), "uri": run_a},
            {"": "B", "run": ib, "command": mb.get("command"), "status": mb.get("status"), "git": _git(mb),
             "started": mb.get("started_at"), "uri": run_b}]
    parts.append(_html_table(head))
    xa, xb = _run_metrics(run_a, ma), _run_metrics(run_b, mb)
    keys = list(dict.fromkeys([*xa, *xb]))
    rows = []
    for k in keys:
        a, b = xa.get(k), xb.get(k)
        rows.append({"metric": k, "A": a, "B": b,
                     "B − A": (b - a) if _numeric(a) and _numeric(b) else None})
    parts.append("<h2 id=metrics>Metrics side by side</h2>"
                 + _html_table(rows, ["metric", "A", "B", "B − A"], limit=400))
    ca, cb = _read(run_a, "train_curves") or [], _read(run_b, "train_curves") or []
    ea, eb = _read(run_a, "eval_metrics") or [], _read(run_b, "eval_metrics") or []
    if ca or cb or ea or eb:
        def it(rows: list[dict]) -> list[dict]:
            return sorted(rows, key=lambda r: r["iteration"])
        png = _curves_png([(f"A {ia}", it(ca), it(ea)), (f"B {ib}", it(cb), it(eb))])
        if png:
            parts.append("<h2 id=curves>Training curves overlaid (A solid, B dashed)</h2>"
                         + _img(png, "training curves overlaid", width=1100))
    fa, fb = _flatten(ma.get("config") or {}), _flatten(mb.get("config") or {})
    diff = [{"key": k, "A": json.dumps(fa.get(k), default=str) if k in fa else "(absent)",
             "B": json.dumps(fb.get(k), default=str) if k in fb else "(absent)"}
            for k in sorted(set(fa) | set(fb)) if fa.get(k, _MISSING) != fb.get(k, _MISSING)]
    for key in ("seed", "command"):
        if ma.get(key) != mb.get(key) and not any(r["key"] == key for r in diff):
            diff.insert(0, {"key": key, "A": json.dumps(ma.get(key)), "B": json.dumps(mb.get(key))})
    parts.append(f"<h2 id=config>Config diff ({len(diff)} keys differ)</h2>"
                 + (_html_table(diff, ["key", "A", "B"], limit=400) if diff else "<p class=meta>identical configs</p>"))
    return _page(f"cvray {ia} vs {ib}", parts)


_MISSING = object()


def write_compare(run_a: str, run_b: str) -> tuple[str, bytes]:
    """Build the comparison page and store it in run A as ``artifacts/compare-<B's id>.html``."""
    data = build_compare(run_a, run_b).encode()
    rid = _manifest(run_b).get("run_id") or "other"
    target = storage.join(run_a, "artifacts", f"compare-{rid}.html")
    storage.write_bytes(target, data)
    return target, data


def write_report(run_uri: str) -> tuple[str, bytes]:
    """Build the page and store it as the run's ``artifacts/report.html``; returns (URI, bytes)."""
    data = build_report(run_uri).encode()
    target = storage.join(run_uri, "artifacts", "report.html")
    storage.write_bytes(target, data)
    return target, data
