"""Dataset card (JSON + Markdown) and overlay grids for a visual audit (pure core).

The card states what a reader of reported numbers needs: sources, label map, annotation types,
split strategy and its unit, per-split statistics (images, instances per class, COCO size
buckets, objects per image), known artifacts, validation / leakage summaries and the metrics
that will be reported.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from cvray.io import storage

__all__ = ["card_markdown", "dataset_card", "overlay_grid", "split_stats"]

SMALL, MEDIUM = 32 ** 2, 96 ** 2  # COCO area buckets


def _ann_type(a: dict) -> str:
    s = a.get("segmentation")
    if not s:
        return "box"
    return "polygon" if isinstance(s, list) else "rle"


def split_stats(doc: dict) -> dict[str, Any]:
    names = {c["id"]: c["name"] for c in doc["categories"]}
    anns = doc["annotations"]
    per_image = Counter(a["image_id"] for a in anns if not a.get("iscrowd"))
    counts = [per_image.get(i["id"], 0) for i in doc["images"]]
    areas = [float(a.get("area", 0)) for a in anns if not a.get("iscrowd")]
    sizes = Counter(f"{i['width']}x{i['height']}" for i in doc["images"])
    return {
        "images": len(doc["images"]),
        "annotations": len(anns),
        "crowd": sum(1 for a in anns if a.get("iscrowd")),
        "instances_per_class": {names.get(c, str(c)): n for c, n in sorted(
            Counter(a["category_id"] for a in anns if not a.get("iscrowd")).items())},
        "size_buckets": {"small": sum(a < SMALL for a in areas),
                         "medium": sum(SMALL <= a < MEDIUM for a in areas),
                         "large": sum(a >= MEDIUM for a in areas)},
        "objects_per_image": {"mean": float(np.mean(counts)) if counts else 0.0,
                              "median": float(np.median(counts)) if counts else 0.0,
                              "max": int(max(counts)) if counts else 0,
                              "empty_images": sum(c == 0 for c in counts)},
        "annotation_types": dict(sorted(Counter(_ann_type(a) for a in anns).items())),
        "image_sizes": dict(sizes.most_common(5)),
    }


def dataset_card(docs: Mapping[str, dict], *, name: str = "dataset", sources: Sequence[str] = (),
                 split_strategy: str = "as given", validation: Mapping | None = None,
                 leakage: Mapping | None = None, known_artifacts: Sequence[str] = (),
                 baselines: Sequence[Mapping] = ()) -> dict[str, Any]:
    first = next(iter(docs.values()))
    types = Counter()
    for d in docs.values():
        types.update(_ann_type(a) for a in d["annotations"])
    has_masks = types.get("polygon", 0) + types.get("rle", 0) > 0
    metrics = ["bbox AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"]
    if has_masks:
        metrics += ["segm AP", "segm AP50", "segm AP75"]
    return {
        "name": name,
        "sources": list(sources),
        "label_map": {c["id"]: c["name"] for c in sorted(first["categories"], key=lambda c: c["id"])},
        "annotation_types": dict(sorted(types.items())),
        "split_strategy": split_strategy,
        "split_unit": "images",
        "splits": {s: split_stats(d) for s, d in docs.items()},
        "known_artifacts": list(known_artifacts),
        "validation": dict(validation or {}),
        "leakage": dict(leakage or {}),
        "baselines": [dict(b) for b in baselines],
        "metrics": metrics,
        "size_bucket_px2": {"small": f"< {SMALL}", "medium": f"{SMALL}-{MEDIUM}", "large": f">= {MEDIUM}"},
    }


def card_markdown(card: Mapping[str, Any]) -> str:
    lines = [f"# Dataset card: {card['name']}", ""]
    lines += ["## Sources", ""] + [f"- {s}" for s in card["sources"] or ["(not given)"]] + [""]
    lines += ["## Label map", "", "| id | name |", "|---:|---|"]
    lines += [f"| {k} | {v} |" for k, v in card["label_map"].items()] + [""]
    lines += ["## Annotation types", ""] + [f"- {k}: {v}" for k, v in card["annotation_types"].items()]
    lines += ["", "## Splits", "", f"Strategy: {card['split_strategy']} (fractions in "
              f"{card['split_unit']}).", ""]
    classes = sorted({c for s in card["splits"].values() for c in s["instances_per_class"]})
    head = "| split | images | annotations | crowd | small | medium | large | obj/img (mean/max) |"
    lines += [head, "|---|---:|---:|---:|---:|---:|---:|---|"]
    for split, s in card["splits"].items():
        b, o = s["size_buckets"], s["objects_per_image"]
        lines.append(f"| {split} | {s['images']} | {s['annotations']} | {s['crowd']} | {b['small']} | "
                     f"{b['medium']} | {b['large']} | {o['mean']:.2f} / {o['max']} |")
    lines += ["", "Instances per class:", "", "| class | " + " | ".join(card["splits"]) + " |",
              "|---|" + "---:|" * len(card["splits"])]
    for c in classes:
        lines.append(f"| {c} | " + " | ".join(str(s["instances_per_class"].get(c, 0))
                                               for s in card["splits"].values()) + " |")
    lines += ["", "## Known artifacts", ""] + [f"- {a}" for a in card["known_artifacts"] or ["none recorded"]]
    lines += ["", "## Validation", ""] + [f"- {k}: {v}" for k, v in card["validation"].items()]
    lines += ["", "## Leakage", ""] + [f"- {k}: {v}" for k, v in card["leakage"].items()]
    if card["baselines"]:
        lines += ["", "## Sanity baselines (bbox, COCO evaluator)", "", "| baseline | split | AP | AP50 |",
                  "|---|---|---:|---:|"]
        lines += [f"| {b['baseline']} | {b['split']} | {b['AP']:.4f} | {b['AP50']:.4f} |"
                  for b in card["baselines"]]
    lines += ["", "## Metrics that will be reported", "", ", ".join(card["metrics"]), ""]
    return "\n".join(lines)


def _colour(k: int) -> tuple[int, int, int]:
    hue = (k * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def overlay_grid(doc: dict, images_root: str, n: int = 16, tile: int = 160, seed: int = 0) -> bytes:
    """PNG of up to ``n`` images with masks (tinted) and boxes (outlined) drawn."""
    from pycocotools import mask as mask_utils

    from cvray.data.coco import safe_join
    from cvray.data.decode import decode_image

    rng = np.random.default_rng(seed)
    imgs = doc["images"]
    pick = sorted(rng.choice(len(imgs), size=min(n, len(imgs)), replace=False)) if imgs else []
    per_image: dict[int, list] = {}
    for a in doc["annotations"]:
        per_image.setdefault(a["image_id"], []).append(a)
    tiles = []
    for k in pick:
        img = imgs[int(k)]
        try:
            rgb = decode_image(storage.read_bytes(safe_join(images_root, img["file_name"])), img["file_name"])
        except Exception:  # an unreadable image is shown as a grey tile (validation reports it)
            rgb = np.full((img["height"], img["width"], 3), 128, np.uint8)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.float32)
        h, w = bgr.shape[:2]
        for a in per_image.get(img["id"], []):
            col = np.array(_colour(a["category_id"]), np.float32)
            seg = a.get("segmentation")
            if seg:
                try:
                    rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg, list) or isinstance(
                        seg.get("counts"), list) else seg
                    m = mask_utils.decode(mask_utils.merge(rle) if isinstance(rle, list) else rle).astype(bool)
                    bgr[m] = 0.5 * bgr[m] + 0.5 * col
                except Exception:  # a broken mask is a validation issue, not a card failure
                    pass
        out = bgr.clip(0, 255).astype(np.uint8)
        for a in per_image.get(img["id"], []):
            x, y, bw, bh = (float(v) for v in a["bbox"])
            if all(math.isfinite(v) for v in (x, y, bw, bh)):
                cv2.rectangle(out, (int(x), int(y)), (int(x + bw), int(y + bh)), _colour(a["category_id"]), 1)
        scale = tile / max(h, w)
        out = cv2.resize(out, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_NEAREST)
        canvas = np.full((tile, tile, 3), 255, np.uint8)
        canvas[:out.shape[0], :out.shape[1]] = out
        cv2.putText(canvas, str(img["id"]), (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        tiles.append(canvas)
    if not tiles:
        tiles = [np.full((tile, tile, 3), 255, np.uint8)]
    cols = min(4, len(tiles))
    while len(tiles) % cols:
        tiles.append(np.full((tile, tile, 3), 255, np.uint8))
    grid = np.vstack([np.hstack(tiles[r:r + cols]) for r in range(0, len(tiles), cols)])
    ok, buf = cv2.imencode(".png", grid)
    return buf.tobytes()
