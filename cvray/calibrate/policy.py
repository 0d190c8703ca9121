"""The saved calibrator: ``<calibrate run>/calibrator.json`` and how ``cvray predict`` applies it.

The file says what the calibrator is (``kind`` and its parameters, the ``calibrator`` dict of
:func:`cvray.calibrate.calibrators.load_calibrator`) and what it is valid for: the IoU and score
thresholds that defined a TP, the model it was fitted for, its category ids, the predict
post-processing the raw scores came from, and the fit split (annotation file, image ids and their
fingerprint) -- so a reader can check that the images it is evaluated on were never fitted on.

Applying it (:class:`ScoreCalibration`) maps each detection's score through the calibrator after
the post-processing policy, so which boxes are kept (score threshold, NMS, max detections) is
decided on the raw scores exactly as without a calibrator; boxes, labels and the order of the
detections are unchanged. A global calibrator is non-decreasing, so the ranking of scores is kept
(isotonic may tie scores a step function maps to one value); a per-class one keeps it within a class.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from cvray.io.json_record import read_record, resolve_record_uri

__all__ = ["CALIBRATOR_FILE", "FORMAT", "ScoreCalibration", "calibrator_record", "ids_fingerprint",
           "read_calibrator", "resolve_calibrator_uri"]

CALIBRATOR_FILE = "calibrator.json"
FORMAT = "cvray.calibrator/1"


def ids_fingerprint(image_ids) -> str:
    """16 hex digits of the SHA-256 of the sorted image ids (the fit split's identity)."""
    text = ",".join(str(int(i)) for i in sorted(int(i) for i in image_ids))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def calibrator_record(calibrator, *, method: str, iou_thr: float, score_thr: float, model: dict[str, Any],
                      category_ids: list[int], fit: dict[str, Any], postprocess: dict[str, Any],
                      metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plain-JSON content of ``calibrator.json``."""
    d = calibrator.to_dict()
    return {"format": FORMAT, "kind": d["kind"], "method": method, "calibrator": d,
            "iou_thr": float(iou_thr), "score_thr": float(score_thr), "model": model,
            "category_ids": [int(c) for c in category_ids], "fit": fit, "postprocess": postprocess,
            "metrics": metrics or {}}


def resolve_calibrator_uri(spec: str) -> str:
    """``spec`` is a ``calibrator.json`` (any ``.json``) or a calibrate run folder holding one."""
    return resolve_record_uri(spec, CALIBRATOR_FILE)


def read_calibrator(spec: str) -> dict[str, Any]:
    """The record at ``spec`` (a file or a calibrate run); ``ValueError`` naming it when unusable."""
    from cvray.calibrate.calibrators import load_calibrator

    uri, rec = read_record(spec, CALIBRATOR_FILE, what="calibrator", fmt=FORMAT,
                           hint="give a calibrator.json or a cvray calibrate run folder")
    if "calibrator" not in rec:
        raise ValueError(f"{uri}: not a cvray calibrator (no 'calibrator' entry)")
    try:
        load_calibrator(rec["calibrator"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{uri}: {exc}") from None
    return {**rec, "uri": uri}


class ScoreCalibration:
    """A loaded ``calibrator.json``: ``calibrate(scores, labels)`` maps raw scores to calibrated ones."""

    def __init__(self, record: dict[str, Any]):
        from cvray.calibrate.calibrators import load_calibrator

        self.record = record
        self.calibrator = load_calibrator(record["calibrator"])

    def calibrate(self, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        if not len(s):
            return s.copy()
        return np.asarray(self.calibrator(np.clip(s, 0.0, 1.0), np.asarray(labels)), dtype=np.float64)

    def describe(self) -> dict[str, Any]:
        """What a predictions run records about its scores (the manifest's ``scores``)."""
        r = self.record
        return {"scores": "calibrated", "raw_scores": "not kept (the calibrator maps them; boxes, labels and "
                "order are the raw post-processing's)", "calibrator": r.get("uri"), "kind": r.get("kind"),
                "iou_thr": r.get("iou_thr"), "fitted_for": (r.get("model") or {}).get("source"),
                "fit_split": (r.get("fit") or {}).get("split")}
