"""Dataset summary statistics (pure core): per-image stats rows → per-split and per-class tables."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any, Iterable

import pyarrow as pa

__all__ = ["CLASS_COUNTS_SCHEMA", "DATASET_SUMMARY_SCHEMA", "aggregate", "image_stats"]

SMALL, MEDIUM = 32 ** 2, 96 ** 2  # COCO's area buckets

DATASET_SUMMARY_SCHEMA = pa.schema([
    ("split", pa.string()), ("images", pa.int64()), ("images_ok", pa.int64()),
    ("images_failed", pa.int64()), ("annotations", pa.int64()), ("crowd", pa.int64()),
    ("small", pa.int64()), ("medium", pa.int64()), ("large", pa.int64()),
    ("objects_per_image_mean", pa.float64()), ("objects_per_image_max", pa.int64()),
    ("mean_height", pa.float64()), ("mean_width", pa.float64()),
], metadata={"cvray.table": "dataset_summary", "cvray.schema_version": "1"})

CLASS_COUNTS_SCHEMA = pa.schema([
    ("split", pa.string()), ("category_id", pa.int64()), ("instances", pa.int64()), ("images", pa.int64()),
], metadata={"cvray.table": "class_counts", "cvray.schema_version": "1"})


def image_stats(row: dict[str, Any]) -> dict[str, Any]:
    """Small stats row of one ingested image (the image array itself is dropped)."""
    anns = json.loads(row["annotations"]) if isinstance(row["annotations"], str) else row["annotations"]
    areas = [float(a.get("area", 0.0)) for a in anns if not a.get("iscrowd", 0)]
    img = row.get("image")
    ok = bool(row.get("ok", True))
    return {
        "split": row.get("split", ""),
        "image_id": row["image_id"],
        "ok": ok,
        "height": int(img.shape[0]) if ok and img is not None and img.size else int(row.get("height") or 0),
        "width": int(img.shape[1]) if ok and img is not None and img.size else int(row.get("width") or 0),
        "annotations": len(anns),
        "crowd": sum(1 for a in anns if a.get("iscrowd", 0)),
        "small": sum(a < SMALL for a in areas),
        "medium": sum(SMALL <= a < MEDIUM for a in areas),
        "large": sum(a >= MEDIUM for a in areas),
        "categories": json.dumps(Counter(int(a["category_id"]) for a in anns
                                         if not a.get("iscrowd", 0) and "category_id" in a)),
    }


def aggregate(stats: Iterable[dict[str, Any]]) -> tuple[pa.Table, pa.Table]:
    """Per-split summary table and per-split, per-class instance counts."""
    by_split: dict[str, list[dict]] = defaultdict(list)
    for s in stats:
        by_split[s["split"]].append(s)
    summ, cls = [], []
    for split in sorted(by_split):
        rows = by_split[split]
        ok = [r for r in rows if r["ok"]]
        n_obj = [r["annotations"] - r["crowd"] for r in rows]
        summ.append({
            "split": split, "images": len(rows), "images_ok": len(ok), "images_failed": len(rows) - len(ok),
            "annotations": sum(r["annotations"] for r in rows), "crowd": sum(r["crowd"] for r in rows),
            "small": sum(r["small"] for r in rows), "medium": sum(r["medium"] for r in rows),
            "large": sum(r["large"] for r in rows),
            "objects_per_image_mean": sum(n_obj) / len(rows) if rows else 0.0,
            "objects_per_image_max": max(n_obj, default=0),
            "mean_height": sum(r["height"] for r in ok) / len(ok) if ok else 0.0,
            "mean_width": sum(r["width"] for r in ok) / len(ok) if ok else 0.0,
        })
        inst: Counter = Counter()
        imgs: Counter = Counter()
        for r in rows:
            c = {int(k): v for k, v in json.loads(r["categories"]).items()}
            inst.update(c)
            imgs.update(c.keys())
        for cid in sorted(inst):
            cls.append({"split": split, "category_id": cid, "instances": inst[cid], "images": imgs[cid]})
    return (pa.Table.from_pylist(summ, schema=DATASET_SUMMARY_SCHEMA),
            pa.Table.from_pylist(cls, schema=CLASS_COUNTS_SCHEMA))
