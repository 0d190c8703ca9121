"""Leak-free splits: whole groups (video, scene, source, camera) go to one split (pure core).

Greedy balanced assignment, deterministic by seed: groups are shuffled, then taken largest
first, each into the split that is furthest below its target share of *images* (the unit of the
fractions). Images without any group field form a group of their own.

Example::

    docs = resplit_coco([train_doc, val_doc], {"train": 0.8, "val": 0.2}, seed=0)
"""
from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np

__all__ = ["assign_groups", "image_group", "resplit_coco"]


def image_group(img: dict, group_keys: Sequence[str]) -> str:
    for k in group_keys:
        if img.get(k) is not None:
            return f"{k}={img[k]}"
    return f"image={img['id']}"


def assign_groups(sizes: Mapping[str, int], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """{group: split} with the image share of each split as close to ``fractions`` as greedy gets."""
    if not fractions or any(f < 0 for f in fractions.values()) or sum(fractions.values()) <= 0:
        raise ValueError(f"split fractions must be non-negative and sum > 0, got {dict(fractions)}")
    total = float(sum(sizes.values()))
    norm = {s: f / sum(fractions.values()) for s, f in fractions.items()}
    groups = sorted(sizes)
    order = np.random.default_rng(seed).permutation(len(groups))
    shuffled = [groups[i] for i in order]
    shuffled.sort(key=lambda g: -sizes[g])  # stable: ties keep the seeded order
    filled = {s: 0 for s in norm}
    out = {}
    for g in shuffled:
        split = max(norm, key=lambda s: (norm[s] * total - filled[s], norm[s]))
        out[g] = split
        filled[split] += sizes[g]
    return out


def resplit_coco(docs: Sequence[dict], fractions: Mapping[str, float], seed: int = 0,
                 group_keys: Sequence[str] = ("scene_id", "video_id", "sequence", "source",
                                              "camera_id")) -> dict[str, dict]:
    """Merge COCO documents and split them again by group; categories are the union by id."""
    images, anns, cats = [], [], {}
    for d in docs:
        images.extend(d["images"])
        anns.extend(d["annotations"])
        for c in d["categories"]:
            cats.setdefault(c["id"], c)
    ids = [i["id"] for i in images]
    if len(set(ids)) != len(ids):
        raise ValueError("image ids repeat across the input files; they must be unique to merge")
    sizes = defaultdict(int)
    for img in images:
        sizes[image_group(img, group_keys)] += 1
    where = assign_groups(sizes, fractions, seed)
    split_of = {img["id"]: where[image_group(img, group_keys)] for img in images}
    out = {s: {"images": [], "annotations": [], "categories": [cats[k] for k in sorted(cats)]}
           for s in fractions}
    for img in images:
        out[split_of[img["id"]]]["images"].append(img)
    for a in anns:
        if a.get("image_id") in split_of:
            out[split_of[a["image_id"]]]["annotations"].append(a)
    return out
