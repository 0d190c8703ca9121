"""The decision policy inside ``cvray calibrate --policy ...``: chosen on the fit split, written as
``<run>/policy.json``, and scored on every slice the run has (the fit split in-sample, the eval
split clean and under each corruption x severity), one ``policy_slices`` table, a PNG of where
it degrades (``artifacts/policy/policy_slices.png``) and the summary's ``policy``.

Rows of ``policy_slices`` (docs/results.md): one per (slice, class) with ``category_id`` null for
all classes, plus pooled rows (``corruption`` ``*``, ``severity`` null) per corruption family and
for low light (``family`` ``low_light``: the ``low_light`` and ``brightness`` corruptions when the
run has them). No Ray, no printing: the driver calls :func:`run_policy` with the slices' matches.
"""
from __future__ import annotations

import logging
import os
from typing import Any

import pyarrow as pa

from cvray.calibrate.decision import (FORMAT, POLICY_FILE, DecisionPolicy, choose_policy, evaluate_policy,
                                      policy_record)
from cvray.io import storage
from cvray.runs.tables import declare

__all__ = ["LOW_LIGHT", "POLICY_SLICES_SCHEMA", "policy_rows", "run_policy"]

log = logging.getLogger(__name__)

#: the corruptions pooled as "night / low light" (``brightness`` is ImageNet-C's lighting change)
LOW_LIGHT = ("low_light", "brightness")
_RATES = ("act_rate", "observe_rate", "abstain_rate", "act_precision", "act_recall", "seen_precision",
          "seen_recall")

POLICY_SLICES_SCHEMA = declare("policy_slices", [
    pa.field("model", pa.string()),
    pa.field("role", pa.string()),
    pa.field("split", pa.string()),
    pa.field("corruption", pa.string()),
    pa.field("severity", pa.int64()),
    pa.field("family", pa.string()),
    pa.field("low_light", pa.bool_()),
    pa.field("category_id", pa.int64()),
    pa.field("scores", pa.string()),
    pa.field("images", pa.int64()),
    pa.field("detections", pa.int64()),
    pa.field("gt", pa.int64()),
    pa.field("act", pa.int64()),
    pa.field("observe", pa.int64()),
    pa.field("abstain", pa.int64()),
    *(pa.field(k, pa.float64()) for k in _RATES),
    pa.field("target_act_precision", pa.float64()),
    pa.field("target_observe_recall", pa.float64()),
    pa.field("act_precision_met", pa.bool_()),
    pa.field("seen_recall_met", pa.bool_()),
], version=1)


def _family(corruption: str) -> str:
    if corruption == "clean":
        return "clean"
    from cvray.robustness.corruptions import family

    return family(corruption)


def policy_rows(policy: DecisionPolicy, matched, gt_counts: dict, *, base: dict[str, Any],
                category_ids: list[int]) -> list[dict[str, Any]]:
    """The rows of one slice (or pool): all classes, then one per class."""
    t = policy.record["targets"]
    out = []
    for cat in (None, *category_ids):
        r = evaluate_policy(policy, matched, gt_counts, category_id=cat)
        out.append({**base, "category_id": cat, "scores": policy.scores, **r,
                    "target_act_precision": t["act_precision"], "target_observe_recall": t["observe_recall"],
                    "act_precision_met": None if r["act_precision"] is None
                    else bool(r["act_precision"] >= t["act_precision"] - 1e-12),
                    "seen_recall_met": None if r["seen_recall"] is None
                    else bool(r["seen_recall"] >= t["observe_recall"] - 1e-12)})
    return out


def _key(r: dict) -> str:
    """``test/clean/0``, ``test/fog/3``, ``test/family:weather``, ``fit:val/clean/0`` (the summary's keys)."""
    if r["corruption"] == "*":
        return f"{r['split']}/family:{r['family']}"
    return ("fit:" if r["role"] == "fit" else "") + f"{r['split']}/{r['corruption']}/{r['severity']}"


def _table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([{f: r.get(f) for f in POLICY_SLICES_SCHEMA.names} for r in rows],
                                schema=POLICY_SLICES_SCHEMA)


def run_policy(run, section, inputs, slices, by: dict, *, cal, calibrator_rec: dict, fit_info: dict,
               model_info: dict) -> dict[str, Any]:
    """Choose the policy on the fit slice, write policy.json, score every slice; the summary's ``policy``."""
    from cvray.calibrate.matching import MatchedDetections

    pc = section.policy
    calibrated = pc.scores == "calibrated"

    def scored(m):  # the scores the thresholds apply to
        return m.with_scores(cal(m.scores, m.labels)) if calibrated and len(m) else m

    # 1. choose on the fit split's clean slice only
    fit = by[slices[0]]
    chosen = choose_policy(scored(fit.matched), fit.gt_counts, act_precision=pc.act_precision,
                           observe_recall=pc.observe_recall, min_support=pc.min_support,
                           category_ids=inputs.category_ids)
    eval_ids = inputs.eval.image_ids
    from cvray.calibrate.policy import ids_fingerprint

    rec = policy_record(chosen, scores=pc.scores, iou_thr=section.iou_thr, score_thr=section.score_thr,
                        model=model_info, category_ids=inputs.category_ids,
                        fit={**fit_info, "gt": {str(k): int(v) for k, v in sorted(fit.gt_counts.items())}},
                        postprocess=inputs.predict.postprocess.model_dump(mode="json"),
                        calibrator=calibrator_rec if calibrated else None)
    rec["evaluated_on"] = {"split": inputs.eval.label, "images": len(eval_ids), "image_ids_sha": ids_fingerprint(eval_ids),
                           "shared_with_fit": len(set(eval_ids) & set(inputs.fit.image_ids))}
    storage.write_json(run.path(POLICY_FILE), rec)
    policy = DecisionPolicy(rec)
    # 2. score every slice, then the pools (families, low light)
    rows: list[dict] = []
    pools: dict[str, list] = {}
    for s in slices:
        res = by.get(s)
        if res is None:
            continue
        m = scored(res.matched)
        fam = _family(s.corruption)
        base = {"model": inputs.model_name, "role": s.role, "split": s.split, "corruption": s.corruption,
                "severity": s.severity, "family": fam, "low_light": s.corruption in LOW_LIGHT, "images": res.images}
        rows += policy_rows(policy, m, res.gt_counts, base=base, category_ids=inputs.category_ids)
        if s.role == "eval" and s.corruption != "clean":
            pools.setdefault(fam, []).append((m, res))
            if s.corruption in LOW_LIGHT:
                pools.setdefault("low_light", []).append((m, res))
    for fam, items in sorted(pools.items()):
        gt: dict[int, int] = {}
        for _, res in items:
            for k, v in res.gt_counts.items():
                gt[k] = gt.get(k, 0) + v
        base = {"model": inputs.model_name, "role": "eval", "split": inputs.eval.label, "corruption": "*",
                "severity": None, "family": fam, "low_light": fam == "low_light",
                "images": sum(res.images for _, res in items)}
        rows += policy_rows(policy, MatchedDetections.concat([m for m, _ in items]), gt, base=base,
                            category_ids=inputs.category_ids)
    run.write_table("policy_slices", _table(rows), part="policy")
    # 3. the plot of where it degrades
    plot = None
    try:
        from cvray.calibrate.diagrams import policy_degradation_plot

        path = run.path("artifacts", "policy", "policy_slices.png")
        if storage.is_s3(path):
            import tempfile

            local = policy_degradation_plot(rows, os.path.join(tempfile.mkdtemp(prefix="cvray-policy-"),
                                                               "policy_slices.png"), rec["targets"])
            plot = run.write_artifact("policy/policy_slices.png", open(local, "rb").read())
        else:
            plot = str(policy_degradation_plot(rows, path, rec["targets"]))
    except Exception as exc:  # a plot never costs the stage's results
        log.warning("policy plot not written: %s", exc)
    overall = [r for r in rows if r["category_id"] is None]

    def brief(r):
        return {k: (None if r[k] is None else round(float(r[k]), 4)) for k in _RATES} | {"detections": r["detections"]}

    clean = next((r for r in overall if r["role"] == "eval" and r["corruption"] == "clean"), None)
    sl = [r for r in overall if r["role"] == "eval" and r["corruption"] not in ("clean", "*")
          and r["act_precision"] is not None]
    worst = min(sl, key=lambda r: r["act_precision"]) if sl else None
    return {"uri": run.path(POLICY_FILE), "format": FORMAT, "scores": pc.scores, "targets": rec["targets"],
            "thresholds": {c: {k: t[k] for k in ("t_act", "t_observe", "act_reason", "observe_reason")}
                           for c, t in rec["classes"].items()},
            "fit_image_ids_sha": fit_info["image_ids_sha"], "eval_image_ids_sha": rec["evaluated_on"]["image_ids_sha"],
            "fit": brief(next(r for r in overall if r["role"] == "fit")),
            "eval_clean": brief(clean) if clean else None,
            "worst_slice": None if worst is None else {"slice": f"{worst['corruption']}/{worst['severity']}",
                                                        **brief(worst)},
            "slices": {_key(r): brief(r) for r in overall},
            "plot": plot}
