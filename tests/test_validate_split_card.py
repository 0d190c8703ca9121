"""Group splits are leak-free and balanced; the card's numbers match the annotations; baselines
are scored by the COCO evaluator and flagged only when a trivial predictor does well."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from cvray.data.synth import make_coco
from cvray.validate.baselines import baseline_predictions, run_baselines
from cvray.validate.card import card_markdown, dataset_card, overlay_grid
from cvray.validate.leakage import group_leaks
from cvray.validate.split import assign_groups, resplit_coco


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    info = make_coco(tmp_path_factory.mktemp("s"), n_images=60, seed=9)
    docs = {s: json.loads(Path(p).read_text()) for s, p in info["annotations"].items()}
    return info, docs


def test_split_by_group_is_leak_free_and_balanced(synth):
    _, docs = synth
    fr = {"train": 0.5, "val": 0.25, "test": 0.25}
    out = resplit_coco(list(docs.values()), fr, seed=3)
    assert not group_leaks(((s, i) for s, d in out.items() for i in d["images"]), ("scene_id",))
    n = {s: len(d["images"]) for s, d in out.items()}
    assert sum(n.values()) == 60
    for s, f in fr.items():  # scenes have 4 images: within one group of the target
        assert abs(n[s] - f * 60) <= 4
    ids = {s: {i["id"] for i in d["images"]} for s, d in out.items()}
    for s, d in out.items():
        assert {a["image_id"] for a in d["annotations"]} <= ids[s]
    assert sum(len(d["annotations"]) for d in out.values()) == sum(
        len(d["annotations"]) for d in docs.values())
    again = resplit_coco(list(docs.values()), fr, seed=3)
    assert again == out  # deterministic by seed


def test_assign_groups_without_groups_uses_images():
    sizes = {f"image={i}": 1 for i in range(100)}
    where = assign_groups(sizes, {"a": 0.8, "b": 0.2}, seed=0)
    assert Counter(where.values()) == {"a": 80, "b": 20}


def test_card_statistics_match_annotations(synth, tmp_path):
    info, docs = synth
    card = dataset_card(docs, name="synth", sources=["cvray synth seed 9"], split_strategy="by scene")
    for split, doc in docs.items():
        s = card["splits"][split]
        non_crowd = [a for a in doc["annotations"] if not a["iscrowd"]]
        assert s["images"] == len(doc["images"])
        assert s["crowd"] == len(doc["annotations"]) - len(non_crowd)
        assert s["size_buckets"]["small"] == sum(a["area"] < 1024 for a in non_crowd)
        assert sum(s["size_buckets"].values()) == len(non_crowd)
        names = {c["id"]: c["name"] for c in doc["categories"]}
        assert s["instances_per_class"] == dict(sorted(Counter(
            names[a["category_id"]] for a in non_crowd).items()))
        assert s["objects_per_image"]["mean"] == pytest.approx(len(non_crowd) / len(doc["images"]))
    assert card["label_map"][1] == "circle" and "segm AP" in card["metrics"]
    md = card_markdown(card)
    assert "# Dataset card: synth" in md and "| circle |" in md and "by scene" in md
    png = overlay_grid(docs["val"], info["images_dir"], n=8, tile=64)
    grid = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert grid.shape[1] == 4 * 64 and grid.shape[0] % 64 == 0


def test_baselines_low_on_synth_and_flagged_when_trivial(synth):
    _, docs = synth
    rows, issues = run_baselines(docs["train"], docs["val"])
    assert {r["baseline"] for r in rows} == {"majority_class", "mean_box_prior"}
    assert all(0 <= r["AP"] < 0.15 for r in rows) and not issues
    # a degenerate dataset: every object is class 1 at the same place -> the prior is perfect
    def degenerate(ids):
        return {"images": [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 80} for i in ids],
                "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [10, 20, 30, 40],
                                 "area": 1200.0, "iscrowd": 0} for i in ids],
                "categories": [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}]}
    train, val = degenerate(range(1, 11)), degenerate(range(11, 16))
    preds = baseline_predictions(train, val, "majority_class")
    assert preds[0]["bbox"] == pytest.approx([10, 20, 30, 40]) and preds[0]["category_id"] == 1
    rows, issues = run_baselines(train, val)
    assert all(r["AP"] == pytest.approx(1.0) for r in rows)
    assert [i.rule for i in issues] == ["baseline.suspicious"] * 2
