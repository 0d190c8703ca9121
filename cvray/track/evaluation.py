"""``cvray track eval``: score tracker output against MOT ground truth, sequence by sequence.

:func:`evaluate_tracking` is pure (storage reads, numpy metrics, no Ray): it pairs every gt
sequence with its tracker output, evaluates each (a sequence without output is scored as empty:
all FN), combines the partials, and optionally attributes ID switches / fragmentations to causes.
:func:`run_track_eval` writes the result into a run (``metrics`` table, one row per sequence plus
``combined``).

Every row carries CLEAR (MOTA, MOTP, IDSW, Frag, MT/PT/ML, FP, FN) as TrackEval computes it -- the
convention MOTChallenge reports today -- at the top level next to HOTA and IDF1, and the same
CLEAR metrics in the old devkit convention (py-motmetrics) under ``"devkit"`` (docs/tracking.md,
"Metric conventions").
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

import numpy as np

from cvray.io import storage
from cvray.runs.errors import InputError
from cvray.track.config import DiagnosticsConfig
from cvray.track.io import find_sequences, read_mot, read_seqinfo
from cvray.track.metrics import DEVKIT_KEYS, combine, evaluate_sequence, summarize
from cvray.track.records import metrics_to_table

__all__ = ["DEVKIT_KEYS", "EVAL_KEYS", "TrackEvalError", "TrackEvalInputs", "evaluate_tracking", "metric_row",
           "run_track_eval"]

EVAL_KEYS = ("MOTA", "MOTP", "IDF1", "IDP", "IDR", "IDSW", "Frag", "MT", "PT", "ML", "FP", "FN",
             "HOTA", "DetA", "AssA", "LocA")


def _number(v):
    return float(v) if isinstance(v, float) else int(v)


def metric_row(d: dict) -> dict:
    """The reported keys of a :func:`summarize` dict, full precision (floats) and exact counts
    (ints): TrackEval CLEAR, IDF1 and HOTA at the top level, devkit CLEAR under ``"devkit"``."""
    row = {k: _number(v) for k, v in d.items() if k in EVAL_KEYS}
    if isinstance(d.get("devkit"), dict):
        row["devkit"] = {k: _number(d["devkit"][k]) for k in DEVKIT_KEYS if k in d["devkit"]}
    return row


class TrackEvalError(InputError):
    """Ground truth and tracker output do not pair up (the message names both inputs)."""


@dataclass(frozen=True)
class TrackEvalInputs:
    gt: str                     # <seq>/gt/gt.txt folder, flat <seq>.txt folder, or one file
    pred: str                   # flat <seq>.txt folder (or TrackEval data/), or one file
    mot17_classes: bool = False  # MOT16/17: drop predictions on distractor classes
    diagnostics: bool = False


def pair_sequences(gt_uri: str, pred_uri: str) -> tuple[dict[str, str], dict[str, str]]:
    """(gt, pred) maps name -> txt URI; raises FileNotFoundError / TrackEvalError."""
    gts = find_sequences(gt_uri, "gt")
    preds = find_sequences(pred_uri, "det")
    if len(gts) == 1 and len(preds) == 1 and set(gts) != set(preds):  # two single files
        preds = {next(iter(gts)): next(iter(preds.values()))}
    if not any(s in preds for s in gts):
        raise TrackEvalError(f"no sequence of {gt_uri} ({', '.join(gts)}) has tracker output in {pred_uri} "
                             f"({', '.join(preds) or 'none'})")
    return gts, preds


def evaluate_tracking(inputs: TrackEvalInputs, diagnostics_cfg: DiagnosticsConfig | None = None
                      ) -> dict[str, Any]:
    """``{seq: metric row, ..., "combined": row}`` (+ ``missing_predictions``, ``diagnostics``)."""
    from cvray.track.diagnostics import combine_diagnostics

    gts, preds = pair_sequences(inputs.gt, inputs.pred)
    missing = [s for s in gts if s not in preds]
    partials, diags, out = [], [], {}
    for seq in gts:
        pr = read_mot(preds[seq]) if seq in preds else np.zeros((0, 10))
        gt = read_mot(gts[seq])
        part = evaluate_sequence(gt, pr, mot17_classes=inputs.mot17_classes)
        partials.append(part)
        out[seq] = metric_row(summarize(part))
        if inputs.diagnostics:
            diags.append(_diagnose(gts[seq], gt, pr, diagnostics_cfg))
            out[seq]["diagnostics"] = {k: diags[-1][k] for k in ("causes", "by_occlusion")}
    out["combined"] = metric_row(summarize(combine(partials)))
    if inputs.diagnostics:
        comb = combine_diagnostics(diags)
        out["combined"]["diagnostics"] = {k: comb[k] for k in ("causes", "by_occlusion")}
    if missing:
        out["missing_predictions"] = missing  # evaluated as empty tracker output (all FN)
    return out


def _diagnose(gt_uri: str, gt, pr, cfg: DiagnosticsConfig | None) -> dict:
    """Diagnostics with the image size from ``<seq>/seqinfo.ini`` when the gt sits in a sequence."""
    from cvray.track.diagnostics import diagnose_sequence

    size = None
    ini = storage.join(posixpath.dirname(posixpath.dirname(gt_uri)), "seqinfo.ini")
    if storage.exists(ini):
        info = read_seqinfo(ini)
        size = (info.height, info.width) if info.height and info.width else None
    return diagnose_sequence(gt, pr, cfg, image_size=size)


def run_track_eval(run: Any, section: Any, inputs: TrackEvalInputs) -> dict[str, Any]:
    """Evaluate and write the ``metrics`` table into ``run``; ``section`` is the ``track`` config."""
    out = evaluate_tracking(inputs, getattr(section, "diagnostics", None))
    rows = {k: {m: v for m, v in r.items() if m != "diagnostics"} for k, r in out.items()
            if isinstance(r, dict)}
    run.write_table("metrics", metrics_to_table(rows))
    run.update(dataset={"gt": inputs.gt, "pred": inputs.pred})
    run.summary.update({"sequences": len(rows) - 1, "combined": rows["combined"],
                        "missing_predictions": out.get("missing_predictions", [])})
    return out
