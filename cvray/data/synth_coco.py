"""Synthetic COCO instance-segmentation dataset with exact ground truth.

Each image is a textured background with shapes painted in order, so later shapes occlude earlier
ones. Every annotation describes the *visible* part exactly: its mask is the shape's rasterised
polygon minus everything painted on top, ``area`` is that mask's pixel count and ``bbox`` its tight
box (both computed with pycocotools from the very mask that was painted). Fully occluded shapes
are dropped. Unoccluded, hole-free shapes are stored as polygons (which decode to exactly the
painted pixels), the rest - occluded shapes, rings with holes and a configurable fraction of the
others - as compressed RLE; crowd regions (clusters of tiny shapes) as uncompressed RLE with
``iscrowd=1``.

Images are grouped into scenes (shared background, ``scene_id`` on each image record); a scene
lives in exactly one split, so splits never share a scene.

Example::

    info = make_coco("/tmp/synth", n_images=24, seed=0)
    info["annotations"]["train"]  # -> /tmp/synth/coco/annotations/instances_train.json
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from cvray.data.synth_draw import (
    SHAPE_NAMES,
    background,
    clip_polygon,
    encode_rle,
    fill_texture,
    paint,
    polygon_mask,
    shape_polygons,
    uncompressed_rle,
)

__all__ = ["CocoSynthConfig", "SPLITS", "make_coco"]

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class CocoSynthConfig:
    """Knobs of the synthetic COCO generator (sizes are fractions of min(H, W) unless noted)."""

    images_per_scene: int = 4
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    objects_per_image: tuple[int, int] = (2, 7)  # inclusive range
    size_range: tuple[float, float] = (0.03, 0.35)  # shape radius, log-uniform
    center_margin: float = 0.1  # centres may lie this far outside the image (partial shapes)
    rle_fraction: float = 0.2  # unoccluded shapes stored as RLE instead of a polygon
    crowd_prob: float = 0.2  # probability that an image gets one crowd region
    crowd_members: tuple[int, int] = (6, 12)
    crowd_member_size: tuple[float, float] = (1.5, 3.5)  # pixels, radius
    min_visible_area: int = 1  # drop shapes with fewer visible pixels (1 = fully occluded only)
    image_jitter: float = 8.0  # per-image brightness jitter within a scene (grey levels)
    categories: tuple[str, ...] = field(default=SHAPE_NAMES)


def _scene_splits(n_scenes: int, fractions: tuple[float, ...], rng: np.random.Generator) -> list[str]:
    """Assign whole scenes to splits: shuffled scenes cut by ``fractions`` (each split gets one
    scene when there are at least as many scenes as splits)."""
    order = rng.permutation(n_scenes)
    frac = np.asarray(fractions, dtype=np.float64)
    counts = np.floor(frac / frac.sum() * n_scenes).astype(int)
    if n_scenes >= len(SPLITS):
        counts = np.maximum(counts, 1)
    while counts.sum() > n_scenes:
        counts[int(np.argmax(counts))] -= 1
    counts[0] += n_scenes - counts.sum()
    out = [""] * n_scenes
    start = 0
    for split, c in zip(SPLITS, counts):
        for s in order[start:start + c]:
            out[int(s)] = split
        start += c
    return out


def _draw_shape(kind, cx, cy, size, h, w, rng):
    """Mask (bool HxW) and the clipped outer polygon (flat list) of one shape, or None if it
    falls outside the image."""
    outer, hole = shape_polygons(kind, cx, cy, size, rng)
    outer = clip_polygon(outer, w, h)
    if len(outer) < 3:
        return None
    flat = [outer.ravel().tolist()]
    mask = polygon_mask(flat, h, w)
    if hole is not None:
        hole = clip_polygon(hole, w, h)
        if len(hole) >= 3:
            mask &= ~polygon_mask([hole.ravel().tolist()], h, w)
    if not mask.any():
        return None
    return mask, flat


def _crowd_mask(h, w, cfg: CocoSynthConfig, rng):
    """Union mask of a cluster of tiny shapes of one class (the crowd region)."""
    kind = cfg.categories[int(rng.integers(len(cfg.categories) - 1))]  # no rings in crowds
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    spread = 0.12 * min(h, w)
    mask = np.zeros((h, w), dtype=bool)
    for _ in range(int(rng.integers(cfg.crowd_members[0], cfg.crowd_members[1] + 1))):
        drawn = _draw_shape(kind, cx + rng.normal(0, spread), cy + rng.normal(0, spread),
                            float(rng.uniform(*cfg.crowd_member_size)), h, w, rng)
        if drawn is not None:
            mask |= drawn[0]
    return (kind, mask) if mask.any() else None


def _render_image(scene_bg, h, w, cfg: CocoSynthConfig, rng):
    """Paint one image; returns (rgb uint8, list of visible-object dicts, n_dropped)."""
    img = scene_bg.astype(np.float32) + rng.uniform(-cfg.image_jitter, cfg.image_jitter)
    img = np.clip(img, 0, 255).astype(np.uint8)
    side = min(h, w)
    objs = []  # painting order
    n = int(rng.integers(cfg.objects_per_image[0], cfg.objects_per_image[1] + 1))
    crowd_at = int(rng.integers(n + 1)) if rng.random() < cfg.crowd_prob else -1
    for i in range(n + 1):
        if i == crowd_at:
            crowd = _crowd_mask(h, w, cfg, rng)
            if crowd is not None:
                objs.append({"kind": crowd[0], "mask": crowd[1], "poly": None, "crowd": True})
        if i == n:
            break
        kind = cfg.categories[int(rng.integers(len(cfg.categories)))]
        lo, hi = cfg.size_range
        size = math.exp(rng.uniform(math.log(lo), math.log(hi))) * side
        m = cfg.center_margin
        cx, cy = rng.uniform(-m, 1 + m) * w, rng.uniform(-m, 1 + m) * h
        drawn = _draw_shape(kind, cx, cy, size, h, w, rng)
        if drawn is not None:
            objs.append({"kind": kind, "mask": drawn[0], "poly": drawn[1], "crowd": False})
    for o in objs:
        paint(img, o["mask"], fill_texture(rng, h, w))
    # visible part = own mask minus everything painted later
    covered = np.zeros((h, w), dtype=bool)
    for o in reversed(objs):
        o["visible"] = o["mask"] & ~covered
        covered |= o["mask"]
    kept = [o for o in objs if int(o["visible"].sum()) >= cfg.min_visible_area]
    return img, kept, len(objs) - len(kept)


def _annotation(o, ann_id, image_id, cat_id, cfg: CocoSynthConfig, rng) -> dict:
    vis = o["visible"]
    if o["crowd"]:
        segm = uncompressed_rle(vis)
    elif o["poly"] is not None and o["kind"] != "ring" and np.array_equal(vis, o["mask"]) \
            and rng.random() >= cfg.rle_fraction:
        segm = [[round(float(v), 3) for v in o["poly"][0]]]
        # rounding moves vertices by <1e-3 px: keep the polygon only if it still decodes exactly
        if not np.array_equal(polygon_mask(segm, *vis.shape), vis):
            segm = encode_rle(vis)
    else:
        segm = encode_rle(vis)
    rle = mask_utils.encode(np.asfortranarray(vis.astype(np.uint8)))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": cat_id,
        "segmentation": segm,
        "area": float(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
        "iscrowd": int(o["crowd"]),
    }


def _write_image(path: Path, rgb: np.ndarray, image_format: str, jpeg_quality: int) -> None:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if image_format == "jpg" else []
    ok, buf = cv2.imencode("." + image_format, bgr, params)
    if not ok:
        raise OSError(f"could not encode synthetic image {path}")
    path.write_bytes(buf.tobytes())


def make_coco(
    out_dir: str | Path,
    n_images: int,
    seed: int,
    image_size: tuple[int, int] = (128, 128),
    *,
    image_format: str = "jpg",
    jpeg_quality: int = 90,
    config: CocoSynthConfig | None = None,
) -> dict:
    """Write a synthetic COCO instance-segmentation dataset under ``<out_dir>/coco``.

    Returns ``{"root", "images_dir", "annotations": {split: path}, "stats": {...}}`` (str paths).
    Same arguments -> byte-identical JSON and images.
    """
    cfg = config or CocoSynthConfig()
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    h, w = int(image_size[0]), int(image_size[1])
    root = Path(out_dir) / "coco"
    img_root = root / "images"
    ann_root = root / "annotations"
    ann_root.mkdir(parents=True, exist_ok=True)

    n_scenes = math.ceil(n_images / cfg.images_per_scene)
    scene_split = _scene_splits(n_scenes, cfg.split_fractions, np.random.default_rng([seed, 0]))
    categories = [{"id": i + 1, "name": n, "supercategory": "shape"}
                  for i, n in enumerate(cfg.categories)]
    cat_ids = {c["name"]: c["id"] for c in categories}
    per_split = {s: {"images": [], "annotations": []} for s in SPLITS}
    stats = {"images": 0, "annotations": 0, "dropped_occluded": 0, "small": 0, "crowd": 0,
             "polygon": 0, "rle": 0}
    ann_id = 0
    for scene in range(n_scenes):
        split = scene_split[scene]
        (img_root / split).mkdir(parents=True, exist_ok=True)
        scene_bg = background(np.random.default_rng([seed, 1, scene]), h, w, scene_field=True)
        first = scene * cfg.images_per_scene
        for image_id in range(first + 1, min(first + cfg.images_per_scene, n_images) + 1):
            rng = np.random.default_rng([seed, 2, image_id])
            img, objs, dropped = _render_image(scene_bg, h, w, cfg, rng)
            file_name = f"{split}/{image_id:06d}.{image_format}"
            _write_image(img_root / file_name, img, image_format, jpeg_quality)
            per_split[split]["images"].append({
                "id": image_id, "file_name": file_name, "height": h, "width": w,
                "scene_id": scene,
            })
            for o in objs:
                ann_id += 1
                ann = _annotation(o, ann_id, image_id, cat_ids[o["kind"]], cfg, rng)
                per_split[split]["annotations"].append(ann)
                stats["small"] += ann["area"] < 32 ** 2 and not ann["iscrowd"]
                stats["crowd"] += ann["iscrowd"]
                stats["polygon" if isinstance(ann["segmentation"], list) else "rle"] += 1
            stats["images"] += 1
            stats["annotations"] += len(objs)
            stats["dropped_occluded"] += dropped

    paths = {}
    for split in SPLITS:
        doc = {
            "info": {"description": "cvray synthetic shapes", "version": "1", "seed": seed,
                     "generator": "cvray.data.synth_coco", "config": asdict(cfg)},
            "licenses": [],
            "images": per_split[split]["images"],
            "annotations": per_split[split]["annotations"],
            "categories": categories,
        }
        path = ann_root / f"instances_{split}.json"
        path.write_text(json.dumps(doc, separators=(",", ":")))
        paths[split] = str(path)
        stats[f"images_{split}"] = len(per_split[split]["images"])
    return {"root": str(root), "images_dir": str(img_root), "annotations": paths, "stats": stats}
