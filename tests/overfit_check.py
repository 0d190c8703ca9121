"""The overfit check: the demo recipe must memorise 8 training images through the whole pipeline.

train (the plain loop, the demo's recipe, flips and scale jitter on) -> checkpoint -> cvray's batch
inference core (letterbox to the model input, forward, boxes and masks mapped back to the
original image, model labels -> COCO category ids) -> COCO box and mask AP on those same images.

A model that learns can memorise 8 images almost perfectly, so AP50 on them sits near 1.0; any
broken link between the annotations and the metric (labels, geometry, masks) pulls it far below.
``tests/test_train_overfit.py`` runs it intact and with one link broken at a time.
Runs as a script too (prints the metrics): ``python tests/overfit_check.py``.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from cvray.data.coco import image_records, load_coco
from cvray.data.synth import CocoSynthConfig, make_coco
from cvray.evaluate.coco import CocoEvaluator
from cvray.predict.config import GeometryConfig, PostprocessConfig
from cvray.predict.engine import ModelFactory, Predictor, predict_local
from cvray.predict.records import to_coco_results
from cvray.predict.sources import list_units
from cvray.runs import start_run
from cvray.train.config import TrainConfig
from cvray.train.demo import DEMO_TRAIN
from cvray.train.workflow import TrainInputs, run_train

IMAGE_HW = (96, 128)       # not square: letterboxing to the 128x128 model input pads 16 rows
MODEL_INPUT = (128, 128)
# Measured here (2-core VM, 84 s of training, cvray's RoIAlign backward): bbox AP50 0.961, segm
# AP50 0.904 through letterboxed inference (before that backward: 0.925 / 0.892 in 99 s). The
# boxes' bar is the issue's 0.9 (training is deterministic on this machine type, which CI uses);
# masks keep a margin under their 0.904.
# With one link broken (tests/test_train_overfit.py) it measured: label map shifted -> bbox AP50
# ~0; pad not undone -> ~0.2; boxes flipped without the image -> bbox 0.795 / segm 0.724; masks
# resized bilinear -> segm AP50 0.807 (boxes unharmed, 0.972).
MIN_BBOX_AP50 = 0.90
MIN_SEGM_AP50 = 0.85

OVERFIT_TRAIN = {
    **DEMO_TRAIN,
    # the demo's augmentation (flips, scale jitter, grey pads) and optimizer, one worker, 400 steps
    "optim": {**DEMO_TRAIN["optim"], "warmup_iters": 20},
    "max_iter": 400, "batch_size": 4, "eval_period": 0, "checkpoint_period": 400,
    "num_workers": 1, "tensorboard": False, "torch_threads": 2,
}


def overfit_dataset(root: Path) -> str:
    """8 training images (12 one-image scenes; the generator's default objects and sizes)."""
    info = make_coco(root, n_images=12, seed=3, image_size=IMAGE_HW,
                     config=CocoSynthConfig(images_per_scene=1))
    assert info["stats"]["images_train"] == 8, info["stats"]
    return info["root"]


def train(root: str, runs: Path, **overrides) -> tuple[TrainConfig, str]:
    """Train the recipe on the training split; returns (config, checkpoint path)."""
    cfg = TrainConfig.model_validate({**OVERFIT_TRAIN, **overrides})
    with start_run("train", config=cfg, root=str(runs), seed=0) as run:
        out = run_train(run, cfg, TrainInputs(root, seed=0), ray=False)
    return cfg, out["checkpoint"]


def score(cfg: TrainConfig, checkpoint: str, root: str) -> dict[str, float]:
    """Predict the training images through cvray's inference core; COCO AP against their GT."""
    ann = f"{root}/annotations/instances_train.json"
    gt = load_coco(ann)
    cats = sorted(c["id"] for c in gt["categories"])
    mcfg = cfg.model.model_copy(update={"num_classes": len(cats), "weights": checkpoint,
                                        "strict_weights": True})
    predictor = Predictor(ModelFactory(mcfg), postprocess_cfg=PostprocessConfig(score_threshold=0.05),
                          category_ids=cats, device="cpu")
    units = list_units(ann)
    dets, issues = predict_local(units, predictor, GeometryConfig(mode="letterbox", size=MODEL_INPUT))
    assert not issues, issues
    out = {}
    for iou_type in ("bbox", "segm"):
        ev = CocoEvaluator(gt, iou_type, image_ids=[r["image_id"] for r in image_records(gt)])
        results = to_coco_results(dets)
        if iou_type == "bbox":
            results = [{k: v for k, v in r.items() if k != "segmentation"} for r in results]
        ev.combine([results])
        stats = ev.evaluate().stats
        out.update({f"{iou_type}_AP50": stats["AP50"], f"{iou_type}_AP": stats["AP"]})
    return out


if __name__ == "__main__":  # pragma: no cover - measurement entry point
    import json
    import sys
    import tempfile

    torch.set_num_threads(2)
    overrides = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        root = overfit_dataset(Path(tmp) / "data")
        cfg, ckpt = train(root, Path(tmp) / "runs", **overrides)
        t1 = time.time()
        print({"train_s": round(t1 - t0, 1), **{k: round(v, 3) for k, v in score(cfg, ckpt, root).items()}})
