"""Validation during training: the eval path reproduces the COCO oracle and scores exact GT as 1."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cvray.data.coco import image_records, load_coco
from cvray.data.synth import make_coco
from cvray.train.data import CategoryMap, record_to_target
from cvray.train.evaluation import predictions_to_coco, summarize


def test_training_eval_reproduces_coco_oracle(shared_dir):
    ref = shared_dir / "refdata" / "coco"
    gt = json.loads((ref / "instances_val2014_100.json").read_text())
    expected = json.loads((ref / "expected_stats.json").read_text())
    cats = CategoryMap.from_coco(gt)
    ids = [im["id"] for im in gt["images"]]
    bbox = json.loads((ref / "instances_val2014_fakebbox100_results.json").read_text())
    m, rows = summarize([{"results": bbox, "image_ids": ids}], gt, cats, task="detection")
    np.testing.assert_allclose([m[f"bbox_{k}"] for k in expected["keys"]], expected["bbox"], rtol=0, atol=1e-9)
    assert len(rows) == 80 and {r["iou_type"] for r in rows} == {"bbox"}

    segm = json.loads((ref / "instances_val2014_fakesegm100_results.json").read_text())
    from pycocotools import mask as mask_utils

    for r in segm:  # the training path always carries a box with each mask
        r["bbox"] = [float(v) for v in mask_utils.toBbox(r["segmentation"])]
    m, _ = summarize([{"results": segm[: len(segm) // 2], "image_ids": ids[:50]},
                      {"results": segm[len(segm) // 2:], "image_ids": ids[50:]}], gt, cats, task="instance")
    np.testing.assert_allclose([m[f"segm_{k}"] for k in expected["keys"]], expected["segm"], rtol=0, atol=1e-9)


def test_exact_ground_truth_as_predictions_scores_ap_one(tmp_path):
    info = make_coco(tmp_path, n_images=12, seed=2, image_size=(96, 96))
    coco = load_coco(info["annotations"]["val"])
    cats = CategoryMap.from_coco(coco)
    partial = {"results": [], "image_ids": []}
    for rec in image_records(coco):
        t = record_to_target(rec, cats, task="instance")  # crowd regions are not instances
        pred = {"boxes": t["boxes"], "labels": t["labels"], "scores": torch.ones(len(t["labels"])),
                "masks": t["masks"][:, None].float()}
        partial["results"] += predictions_to_coco(pred, rec["image_id"], cats)
        partial["image_ids"].append(rec["image_id"])
    m, _ = summarize([partial], coco, cats, task="instance")
    assert m["bbox_AP"] == pytest.approx(1.0) and m["segm_AP"] == pytest.approx(1.0)


def test_training_core_runs_without_ray():
    """The engine, hooks, data, models and the plain workflow never import Ray."""
    import subprocess
    import sys

    code = ("import sys, cvray.train.workflow, cvray.train.engine, cvray.train.hooks, cvray.train.data, "
            "cvray.train.transforms, cvray.train.losses, cvray.train.evaluation, cvray.train.checkpoint, "
            "cvray.models, cvray.models.torchvision_backend, cvray.models.detectron2_backend; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
