"""Batch inference core (no Ray): preprocess rows, run a detector once-loaded, map results back.

The three pieces line up with the Ray Data stages of :mod:`cvray.predict.distributed` and run the
same in a plain loop (:func:`predict_local`, the single-process baseline of the benchmark):

1. :func:`preprocess_row` — letterbox/resize an RGB image to the model input (CPU work);
2. :class:`Predictor` — loads the model once in ``__init__``; ``__call__`` maps a batch dict of
   numpy arrays to a dict of numpy arrays: forward pass, map boxes/masks back to the original
   image, post-processing policy, RLE masks. Each output row is ``status`` ("ok" | "error" |
   "nan") plus ``payload`` (one predictions row as JSON) or the error;
3. :func:`rows_to_results` — payloads → :class:`Detections` records, failures → issue rows.

A row whose forward pass yields NaN/inf is reported (``prediction.nan``) instead of written.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
import torch

from cvray.predict.config import GeometryConfig, PostprocessConfig
from cvray.predict.geometry import Letterbox
from cvray.predict.postprocess import postprocess
from cvray.predict.preprocess import preprocess_batch, preprocess_row
from cvray.predict.records import Detections
from cvray.runs.issues import issue

__all__ = ["ModelFactory", "Predictor", "preprocess_row", "preprocess_batch", "rows_to_results",
           "predict_local"]

log = logging.getLogger(__name__)
_META = ("image_id", "file_name", "uri", "frame_index", "timestamp_s", "height", "width",
         "scale_x", "scale_y", "pad_x", "pad_y", "ok", "rule", "error")


@dataclass(frozen=True)
class ModelFactory:
    """Picklable recipe for the model: a ``cvray.models.ModelConfig`` (weights inside it)."""

    model_config: Any

    def __call__(self) -> torch.nn.Module:
        from cvray.models import build_model

        return build_model(self.model_config)


def _rle(masks: np.ndarray) -> list[dict]:
    from pycocotools import mask as mask_utils

    if not len(masks):
        return []
    enc = mask_utils.encode(np.asfortranarray(np.moveaxis(masks.astype(np.uint8), 0, -1)))
    return [{"size": [int(s) for s in e["size"]], "counts": e["counts"].decode()} for e in enc]


class Predictor:
    """Loads the model once (``__init__``); maps batches dict → dict of numpy (``__call__``).

    Args:
        model_factory: zero-argument callable returning a torchvision-protocol detector.
        postprocess_cfg: the post-processing policy.
        category_ids: dataset category id of model label k at position k-1 (None: label = id).
        device: "cuda" / "cpu" (default: cuda when available).
        num_threads: torch intra-op threads (default: leave as the process has it).
        calibrator: a ``calibrator.json`` record (:func:`cvray.calibrate.policy.read_calibrator`):
            the scores of the kept detections are mapped through it after the policy.
        policy: a ``policy.json`` record (:func:`cvray.calibrate.decision.read_policy`): every
            kept detection gets its decision (act / observe / abstain, ``Detections.decisions``),
            from the scores written -- after the calibrator when one is given; a policy chosen on
            the other kind of score is refused (``ValueError``, ``check_score_kind``).
    """

    def __init__(self, model_factory: Callable[[], torch.nn.Module], *,
                 postprocess_cfg: PostprocessConfig = PostprocessConfig(),
                 category_ids: list[int] | None = None, device: str | None = None,
                 num_threads: int | None = None, calibrator: dict | None = None, policy: dict | None = None):
        if policy is not None:  # its thresholds must be for the scores written (raw, or this calibrator's)
            from cvray.calibrate.decision import check_score_kind

            check_score_kind(policy, calibrator)
        if num_threads:
            torch.set_num_threads(num_threads)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model_factory().eval().to(self.device)
        self.post = postprocess_cfg
        self.category_ids = list(category_ids) if category_ids is not None else None
        self.calibration = None
        if calibrator is not None:
            from cvray.calibrate.policy import ScoreCalibration

            self.calibration = ScoreCalibration(calibrator)
        self.policy = policy  # a policy.json record (cvray.calibrate.decision); tags act/observe/abstain
        self.decision = None
        if policy is not None:
            from cvray.calibrate.decision import DecisionPolicy

            self.decision = DecisionPolicy(policy)

    def forward(self, images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Forward pass only (also timed alone by the benchmark)."""
        tensors = [torch.from_numpy(np.ascontiguousarray(im)).to(self.device).permute(2, 0, 1).float().div_(255)
                   for im in images]
        with torch.inference_mode():
            outs = self.model(tensors)
        return [{k: v.detach().cpu().numpy() for k, v in o.items()} for o in outs]

    def _label_to_category(self, labels: np.ndarray) -> np.ndarray:
        if self.category_ids is None:
            return labels.astype(np.int64)
        ids = np.asarray(self.category_ids, np.int64)
        if len(labels) and (labels.min() < 1 or labels.max() > len(ids)):
            raise ValueError(f"model label outside 1..{len(ids)}: {labels.min()}..{labels.max()}")
        return ids[labels.astype(np.int64) - 1]

    def to_record(self, out: dict[str, np.ndarray], meta: dict[str, Any]) -> Detections | None:
        """Model-space output → original-image Detections after the policy; None on NaN/inf."""
        boxes, scores = out["boxes"], out["scores"]
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            return None
        lb = Letterbox((int(meta["height"]), int(meta["width"])), (0, 0), float(meta["scale_x"]),
                       float(meta["scale_y"]), int(meta["pad_x"]), int(meta["pad_y"]))
        masks = None
        if "masks" in out:
            soft = out["masks"][:, 0] if out["masks"].ndim == 4 else out["masks"]
            masks = _rle(lb.masks_to_original(soft >= self.post.mask_threshold))
        fi = int(meta["frame_index"])
        ts = float(meta["timestamp_s"])
        det = Detections(int(meta["image_id"]), int(meta["height"]), int(meta["width"]),
                         lb.boxes_to_original(boxes), scores, self._label_to_category(out["labels"]), masks,
                         file_name=str(meta["file_name"]), frame_index=fi if fi >= 0 else None,
                         timestamp_s=ts if np.isfinite(ts) else None)
        det = postprocess(det, self.post)
        if self.calibration is not None:  # the policy chose the boxes on raw scores; only scores change
            det.scores = self.calibration.calibrate(det.scores, det.labels)
        if self.decision is not None:  # on the scores written: calibrated when a calibrator is given
            det.decisions = self.decision.decide(det.scores, det.labels)
        return det

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["image_id"])
        ok = np.asarray(batch["ok"], bool)
        status = np.array(["error"] * n, dtype=object)
        payload = np.array([""] * n, dtype=object)
        error = np.array([str(e) for e in batch["error"]], dtype=object)
        rule = np.array([str(r) for r in batch["rule"]], dtype=object)
        idx = np.flatnonzero(ok)
        if len(idx):
            outs = self.forward([batch["image"][i] for i in idx])
            for i, out in zip(idx, outs):
                meta = {k: batch[k][i] for k in _META if k in batch}
                det = self.to_record(out, meta)
                if det is None:
                    status[i], rule[i] = "nan", "prediction.nan"
                    error[i] = f"{meta['file_name']}: model output has NaN/inf boxes or scores"
                    continue
                row = det.to_row()
                if row["masks"] is not None:
                    for m in row["masks"]:
                        m["counts"] = m["counts"].decode()
                status[i], payload[i] = "ok", json.dumps(row)
        return {"image_id": np.asarray(batch["image_id"]), "file_name": np.asarray(batch["file_name"], dtype=object),
                "uri": np.asarray(batch["uri"], dtype=object), "status": status, "payload": payload,
                "rule": rule, "error": error}


def rows_to_results(rows: Iterable[dict[str, Any]], stage: str = "predict"
                    ) -> tuple[list[Detections], list[dict[str, Any]]]:
    """Predictor output rows → (records, issue rows). Every row lands in exactly one list."""
    dets, issues = [], []
    for r in rows:
        if r["status"] == "ok":
            dets.append(Detections.from_row(json.loads(r["payload"])))
        else:
            issues.append(issue(stage, str(r["rule"]) or "image.unreadable", str(r["error"]),
                                file=str(r["uri"]) or str(r["file_name"]), image_id=int(r["image_id"])))
    return dets, issues


def predict_local(units: list[dict], predictor: Predictor, geometry: GeometryConfig,
                  batch_size: int = 4, transform: Callable[[dict], dict] | None = None
                  ) -> tuple[list[Detections], list[dict]]:
    """The same pipeline in one process: read → preprocess → model → postprocess, in order.

    ``transform(row) -> row`` runs on every decoded row before preprocessing (``cvray
    robustness`` corrupts the image there)."""
    from cvray.predict.sources import read_unit

    dets, issues, buf = [], [], []

    def flush():
        if not buf:
            return
        batch = preprocess_batch({k: np.array([r[k] for r in buf] + [None], dtype=object)[:-1]
                                  for k in buf[0]}, geometry)
        out = predictor(batch)
        n = len(out["image_id"])
        d, i = rows_to_results({k: out[k][j] for k in out} for j in range(n))
        dets.extend(d)
        issues.extend(i)
        buf.clear()

    for unit in units:
        for row in read_unit(unit):
            if transform is not None and row.get("ok"):
                row = transform(row)
            buf.append(row)
            if len(buf) >= batch_size:
                flush()
    flush()
    return dets, issues
