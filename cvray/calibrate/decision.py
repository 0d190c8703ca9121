"""Act / observe / abstain: per-class score thresholds chosen for stated targets, the policy file
``policy.json``, and how a detection gets its decision.

A detector's score is turned into an action with two thresholds per class, chosen on the fit
(validation) split of ``cvray calibrate`` from its detections matched to the ground truth
(:mod:`cvray.calibrate.matching`, COCO rule at the stated IoU):

* ``t_act(c)``: the **lowest** threshold whose precision on the fit split is at least
  ``act_precision`` with at least ``min_support`` detections at or above it. Lowest, so the most
  detections act while the acted ones are still precise enough. When no threshold reaches the
  target with that support the class **never acts** (``t_act`` null) and its ``act_reason`` says
  why (the best precision reachable with that support).
* ``t_observe(c)``: the **highest** threshold whose recall (TPs at or above it / the class's GT
  objects on the fit split) is at least ``observe_recall``, capped at ``t_act`` (whatever acts
  is also seen). When the recall is unreachable (the detector misses too many objects at any
  threshold) every kept detection is observed (``t_observe`` 0) and ``observe_reason`` says so; a
  class without GT on the fit split observes nothing (null).

Candidate thresholds are the class's fit scores themselves, so a chosen threshold is a score that
occurred (``score >= t`` includes it). A detection then gets

    act      if score >= t_act(c)
    observe  elif score >= t_observe(c)
    abstain  otherwise (also: a class the policy does not know)

The thresholds apply to one kind of score, recorded in the file as ``scores``: ``raw`` (the scores
of the post-processing policy) or ``calibrated`` (after the calibrator saved by the same run,
whose identity ``calibrator_sha`` the file records). ``cvray predict`` refuses a policy chosen on
raw scores together with a ``predict.calibrator``, and one chosen on calibrated scores without
that calibrator (:func:`check_score_kind`).

Example::

    pol = choose_policy(matched_fit, gt_counts={1: 40, 2: 35}, act_precision=0.9, observe_recall=0.8)
    DecisionPolicy(pol).decide(np.array([0.95, 0.4]), np.array([1, 2]))   # ['act', 'observe']
    rates = evaluate_policy(DecisionPolicy(pol), matched_test, gt_counts_test)
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

import numpy as np

from cvray.io.json_record import read_record, resolve_record_uri

__all__ = ["ABSTAIN", "ACT", "DECISIONS", "FORMAT", "OBSERVE", "POLICY_FILE", "DecisionPolicy",
           "calibrator_sha", "check_score_kind", "choose_policy", "choose_thresholds", "evaluate_policy",
           "parse_targets", "policy_record", "read_policy", "resolve_policy_uri"]

FORMAT = "cvray.policy/1"
POLICY_FILE = "policy.json"
ACT, OBSERVE, ABSTAIN = "act", "observe", "abstain"
DECISIONS = (ACT, OBSERVE, ABSTAIN)
SCORE_KINDS = ("raw", "calibrated")
TARGET_KEYS = ("act_precision", "observe_recall", "min_support", "scores")


def parse_targets(text: str) -> dict[str, str]:
    """``"act_precision=0.9,observe_recall=0.8"`` -> ``{"act_precision": "0.9", ...}`` (names checked)."""
    out: dict[str, str] = {}
    for item in (s.strip() for s in str(text).split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in TARGET_KEYS:
            raise ValueError(f"--policy {text!r}: expected KEY=VALUE with KEY one of {', '.join(TARGET_KEYS)}; "
                             f"got {item!r}")
        out[key] = value.strip()
    return out


# -- choosing the thresholds ----------------------------------------------------------------------

def _curve(scores: np.ndarray, tp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores (descending) and, at each as threshold ``score >= t``: detections, TPs."""
    order = np.argsort(-scores, kind="mergesort")
    s, t = scores[order], tp[order].astype(np.int64)
    n_cum, tp_cum = np.arange(1, len(s) + 1), np.cumsum(t)
    last = np.r_[s[1:] != s[:-1], True] if len(s) else np.zeros(0, bool)  # last row of each tie group
    return s[last], n_cum[last], tp_cum[last]


def choose_thresholds(scores, tp, n_gt: int, *, act_precision: float, observe_recall: float,
                      min_support: int = 10) -> dict[str, Any]:
    """One class's thresholds (see the module doc) with what they achieve on these detections."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    tp = np.asarray(tp, bool).reshape(-1)
    thr, n, k = _curve(scores, tp)
    prec = k / np.maximum(n, 1)
    rec = k / n_gt if n_gt > 0 else np.zeros(len(thr))
    out: dict[str, Any] = {"detections": int(len(scores)), "tp": int(tp.sum()), "gt": int(n_gt)}
    # 1. act: the lowest threshold with precision >= target and support >= min_support
    ok = (prec >= act_precision - 1e-12) & (n >= min_support)
    if ok.any():
        i = int(np.flatnonzero(ok)[-1])  # thresholds descend: the last qualifying is the lowest
        out.update(t_act=float(thr[i]), act_precision=float(prec[i]), act_recall=float(rec[i]) if n_gt else None,
                   act_support=int(n[i]), act_reason="")
    else:
        enough = n >= min_support
        best = float(prec[enough].max()) if enough.any() else None
        why = (f"unreachable: fewer than {min_support} detections on the fit split ({len(scores)})" if best is None
               else f"unreachable: best precision {best:.3f} with >= {min_support} detections < target "
                    f"{act_precision:g}")
        out.update(t_act=None, act_precision=None, act_recall=None, act_support=0, act_reason=why + "; never acts")
    # 2. observe: the highest threshold with recall >= target, capped at t_act
    if n_gt <= 0:
        out.update(t_observe=None, observe_recall=None, observe_precision=None, observe_support=0,
                   observe_reason="no ground-truth objects of this class on the fit split; never observes")
        return out
    ok = rec >= observe_recall - 1e-12
    if ok.any():
        i = int(np.flatnonzero(ok)[0])  # the first (highest) threshold reaching the recall
        t_obs, why = float(thr[i]), ""
    else:
        best = float(rec.max()) if len(rec) else 0.0
        t_obs, why = 0.0, (f"unreachable: recall {best:.3f} at the lowest score < target {observe_recall:g}; "
                           "every kept detection is observed")
    if out["t_act"] is not None and t_obs > out["t_act"]:
        t_obs, why = out["t_act"], (why + "; " if why else "") + "capped at t_act"
    sel = scores >= t_obs
    out.update(t_observe=t_obs, observe_recall=float(tp[sel].sum() / n_gt),
               observe_precision=float(tp[sel].mean()) if sel.any() else None, observe_support=int(sel.sum()),
               observe_reason=why)
    return out


def choose_policy(matched, gt_counts: Mapping[int, int], *, act_precision: float, observe_recall: float,
                  min_support: int = 10, category_ids: list[int] | None = None) -> dict[str, Any]:
    """Per-class thresholds from a ``MatchedDetections`` and the GT objects per class (the fit split).

    Returns ``{"targets": ..., "classes": {category_id: thresholds}}``, the core of
    :func:`policy_record`. Classes are ``category_ids`` (default: those with detections or GT).
    """
    if not 0.0 < act_precision <= 1.0 or not 0.0 < observe_recall <= 1.0:
        raise ValueError(f"targets must be in (0, 1]: act_precision={act_precision}, observe_recall={observe_recall}")
    if min_support < 1:
        raise ValueError(f"min_support must be >= 1, got {min_support}")
    cats = (list(category_ids) if category_ids is not None
            else sorted({int(c) for c in matched.labels} | {int(c) for c in gt_counts}))
    classes = {}
    for c in cats:
        m = matched.for_class(c)
        classes[str(int(c))] = choose_thresholds(m.scores, m.tp, int(gt_counts.get(c, 0)),
                                                 act_precision=act_precision, observe_recall=observe_recall,
                                                 min_support=min_support)
    return {"targets": {"act_precision": float(act_precision), "observe_recall": float(observe_recall),
                        "min_support": int(min_support)}, "classes": classes}


def calibrator_sha(calibrator_rec: Mapping[str, Any] | None) -> str | None:
    """16 hex digits identifying a calibrator (its ``calibrator`` parameters), or None."""
    if not calibrator_rec:
        return None
    text = json.dumps(calibrator_rec.get("calibrator"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def policy_record(chosen: dict[str, Any], *, scores: str, iou_thr: float, score_thr: float, model: dict[str, Any],
                  category_ids: list[int], fit: dict[str, Any], postprocess: dict[str, Any] | None = None,
                  calibrator: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The plain-JSON content of ``policy.json`` (``chosen`` from :func:`choose_policy`)."""
    if scores not in SCORE_KINDS:
        raise ValueError(f"scores must be one of {SCORE_KINDS}, got {scores!r}")
    if scores == "calibrated" and not calibrator:
        raise ValueError("a policy on calibrated scores needs the calibrator the scores came from")
    return {"format": FORMAT, "targets": chosen["targets"], "scores": scores,
            "calibrator": None if scores == "raw" else {"kind": calibrator.get("kind"),
                                                        "method": calibrator.get("method"),
                                                        "calibrator_sha": calibrator_sha(calibrator)},
            "iou_thr": float(iou_thr), "score_thr": float(score_thr), "model": model,
            "category_ids": [int(c) for c in category_ids], "fit": fit, "postprocess": postprocess or {},
            "classes": chosen["classes"]}


# -- the file -------------------------------------------------------------------------------------

def resolve_policy_uri(spec: str) -> str:
    """``spec`` is a ``policy.json`` (any ``.json``) or a calibrate run folder holding one."""
    return resolve_record_uri(spec, POLICY_FILE)


def read_policy(spec: str) -> dict[str, Any]:
    """The record at ``spec`` (a file or a calibrate run); ``ValueError`` naming it when unusable."""
    uri, rec = read_record(spec, POLICY_FILE, what="decision policy", fmt=FORMAT,
                           hint="give a policy.json or a cvray calibrate run made with --policy")
    try:
        DecisionPolicy(rec)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{uri}: {exc}") from None
    return {**rec, "uri": uri}


def check_score_kind(policy: Mapping[str, Any], calibrator: Mapping[str, Any] | None) -> None:
    """``ValueError`` unless the policy's thresholds are for the scores predict will write."""
    kind = policy.get("scores", "raw")
    where = policy.get("uri", "the policy")
    if kind == "raw" and calibrator is not None:
        raise ValueError(f"{where}: its thresholds were chosen on raw scores, but predict.calibrator makes the "
                         "scores calibrated; drop predict.calibrator or choose the policy with "
                         "--policy ...,scores=calibrated")
    if kind == "calibrated":
        if calibrator is None:
            raise ValueError(f"{where}: its thresholds were chosen on calibrated scores; give the calibrator "
                             "they came from (predict.calibrator=<the same calibrate run>)")
        want = (policy.get("calibrator") or {}).get("calibrator_sha")
        if want and calibrator_sha(calibrator) != want:
            raise ValueError(f"{where}: chosen on the scores of calibrator {want}, predict.calibrator "
                             f"{calibrator.get('uri', '')} is {calibrator_sha(calibrator)}; use the calibrator of "
                             "the calibrate run that wrote the policy")


class DecisionPolicy:
    """A loaded ``policy.json``: ``decide(scores, labels) -> list[str]`` (act / observe / abstain)."""

    def __init__(self, record: Mapping[str, Any]):
        self.record = record
        if record.get("scores", "raw") not in SCORE_KINDS:
            raise ValueError(f"scores must be one of {SCORE_KINDS}, got {record.get('scores')!r}")
        self.act: dict[int, float] = {}
        self.observe: dict[int, float] = {}
        for c, t in dict(record["classes"]).items():
            a, o = t.get("t_act"), t.get("t_observe")
            if a is not None:
                self.act[int(c)] = float(a)
            if o is not None:
                self.observe[int(c)] = float(o)
            if a is not None and o is not None and float(o) > float(a):
                raise ValueError(f"class {c}: t_observe {o} > t_act {a}")

    @property
    def scores(self) -> str:
        return str(self.record.get("scores", "raw"))

    def decide(self, scores, labels) -> list[str]:
        s = np.asarray(scores, np.float64).reshape(-1)
        lab = np.asarray(labels, np.int64).reshape(-1)
        if len(s) != len(lab):
            raise ValueError(f"{len(s)} scores but {len(lab)} labels")
        t_act = np.array([self.act.get(int(c), np.inf) for c in lab])
        t_obs = np.array([self.observe.get(int(c), np.inf) for c in lab])
        out = np.where(s >= t_act, ACT, np.where(s >= t_obs, OBSERVE, ABSTAIN))
        return [str(d) for d in out]

    def describe(self) -> dict[str, Any]:
        """What a predictions run records about its decisions (for its summary / manifest)."""
        r = self.record
        return {"policy": r.get("uri"), "scores": self.scores, "targets": r.get("targets"),
                "iou_thr": r.get("iou_thr"), "chosen_for": (r.get("model") or {}).get("source"),
                "fit_split": (r.get("fit") or {}).get("split"),
                "acting_classes": sorted(self.act), "observing_classes": sorted(self.observe)}


# -- evaluating it on a slice ---------------------------------------------------------------------

def evaluate_policy(policy: DecisionPolicy, matched, gt_counts: Mapping[int, int],
                    category_id: int | None = None) -> dict[str, Any]:
    """Rates and precision / recall of a policy on one slice's matched detections.

    ``act_rate + observe_rate + abstain_rate == 1`` over the slice's detections;
    ``act_precision`` = TPs among the acted / acted; ``act_recall`` = TPs among the acted / GT;
    ``seen_recall`` = TPs among act + observe / GT objects. None where the denominator is 0.
    ``category_id`` restricts to one class.
    """
    m = matched if category_id is None else matched.for_class(category_id)
    n_gt = int(sum(gt_counts.values()) if category_id is None else gt_counts.get(category_id, 0))
    d = np.asarray(policy.decide(m.scores, m.labels), dtype=object) if len(m) else np.zeros(0, object)
    act, obs = d == ACT, d == OBSERVE
    n = len(m)

    def ratio(a, b):
        return float(a / b) if b else None

    return {"detections": n, "gt": n_gt, "tp": int(m.tp.sum()),
            "act": int(act.sum()), "observe": int(obs.sum()), "abstain": int(n - act.sum() - obs.sum()),
            "act_rate": ratio(act.sum(), n), "observe_rate": ratio(obs.sum(), n),
            "abstain_rate": ratio(n - act.sum() - obs.sum(), n),
            "act_precision": ratio(m.tp[act].sum(), act.sum()), "act_recall": ratio(m.tp[act].sum(), n_gt),
            "seen_precision": ratio(m.tp[act | obs].sum(), (act | obs).sum()),
            "seen_recall": ratio(m.tp[act | obs].sum(), n_gt)}
