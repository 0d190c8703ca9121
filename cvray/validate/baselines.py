"""Sanity baselines scored with the real COCO evaluator: if a trivial predictor scores well, the
benchmark is probably broken (fixed object positions, one dominant class, leaked boxes).

* ``majority_class``: on every image, the mean (normalised) training box, labelled with the
  most frequent training class.
* ``mean_box_prior``: on every image, one mean training box per class, scored by the class's
  training frequency.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from cvray.runs.issues import Issue
from cvray.validate.config import ValidateConfig
from cvray.validate.rules import issue

__all__ = ["BASELINES", "baseline_predictions", "run_baselines"]

BASELINES = ("majority_class", "mean_box_prior")


def _normalised_boxes(doc: dict) -> tuple[np.ndarray, np.ndarray]:
    sizes = {i["id"]: (i["width"], i["height"]) for i in doc["images"]}
    boxes, cats = [], []
    for a in doc["annotations"]:
        if a.get("iscrowd") or a["image_id"] not in sizes:
            continue
        w, h = sizes[a["image_id"]]
        x, y, bw, bh = a["bbox"]
        boxes.append((x / w, y / h, bw / w, bh / h))
        cats.append(a["category_id"])
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(cats)


def baseline_predictions(train: dict, target: dict, kind: str) -> list[dict]:
    """COCO results (image_id, category_id, bbox, score) of a baseline on ``target``'s images."""
    boxes, cats = _normalised_boxes(train)
    if len(boxes) == 0:
        return []
    freq = Counter(cats.tolist())
    if kind == "majority_class":
        priors = [(freq.most_common(1)[0][0], boxes.mean(axis=0), 1.0)]
    elif kind == "mean_box_prior":
        n = float(len(cats))
        priors = [(c, boxes[cats == c].mean(axis=0), freq[c] / n) for c in sorted(freq)]
    else:
        raise ValueError(f"unknown baseline {kind!r}; expected one of {BASELINES}")
    out = []
    for img in target["images"]:
        w, h = img["width"], img["height"]
        for c, (x, y, bw, bh), score in priors:
            out.append({"image_id": img["id"], "category_id": int(c),
                        "bbox": [x * w, y * h, bw * w, bh * h], "score": float(score)})
    return out


def run_baselines(train: dict, target: dict, cfg: ValidateConfig | None = None,
                  split: str = "val") -> tuple[list[dict], list[Issue]]:
    """Score each baseline on ``target`` (bbox AP, COCO evaluator); flag suspicious ones."""
    from cvray.evaluate.coco import coco_evaluate

    cfg = cfg or ValidateConfig()
    rows, issues = [], []
    gt = {"images": target["images"], "annotations": target["annotations"],
          "categories": target["categories"]}
    for kind in BASELINES:
        preds = baseline_predictions(train, target, kind)
        if not preds or not target["annotations"]:
            continue
        res = coco_evaluate(gt, preds, iou_type="bbox")
        row = {"baseline": kind, "split": split, **{k: float(v) for k, v in res.stats.items()}}
        rows.append(row)
        if row["AP"] > cfg.baseline_ap_max:
            issues.append(issue("baseline.suspicious", f"{split}: the {kind} baseline reaches AP "
                                f"{row['AP']:.3f} > {cfg.baseline_ap_max:g}; objects may sit at fixed "
                                "positions or one class may dominate"))
    return rows, issues
