"""Ray Data readers of the data stage: COCO datasets -> per-image rows; MOT sequences / videos ->
ordered frames. The only module of :mod:`cvray.data` that imports Ray; the per-row work (decode,
frame extraction, issue rows) is pure and lives in :mod:`cvray.data.ingest`.
"""
from __future__ import annotations

import json
import os

from cvray.data.coco import DatasetError, image_records, load_coco, safe_join
from cvray.data.ingest import _decode_batch, _video_frames
from cvray.data.mot import frame_records

__all__ = ["read_coco", "read_mot_sequence", "read_video"]


def read_coco(annotations_uri: str, images_root: str, *, split: str = "", decode: bool = True,
              override_num_blocks: int | None = None):
    """A Ray Dataset with one row per image of a COCO file (local or S3).

    Columns: image_id, file_name, uri, height, width, split, annotations (JSON text), and when
    ``decode`` is set: image (uint8 HxWx3 RGB), ok, rule, error.
    """
    import ray

    coco = load_coco(annotations_uri)
    items = []
    for rec in image_records(coco):
        try:
            uri = safe_join(images_root, rec["file_name"])
        except DatasetError:
            uri = ""
        items.append({
            "image_id": int(rec["image_id"]) if rec["image_id"] is not None else -1,
            "file_name": str(rec["file_name"]),
            "uri": uri,
            "height": int(rec["height"] or 0),
            "width": int(rec["width"] or 0),
            "split": split,
            "annotations": json.dumps(rec["annotations"]),
            "group": str(rec.get("scene_id", rec.get("video_id", ""))),
        })
    n_blocks = override_num_blocks or max(1, min(len(items), 64, len(items) // 8 or 1))
    ds = ray.data.from_items(items, override_num_blocks=n_blocks)
    if decode:
        ds = ds.map_batches(_decode_batch, batch_size=16, batch_format="numpy")
    return ds


def read_mot_sequence(seq_uri: str):
    """Ordered per-frame rows (sequence, frame, timestamp, image, ok, rule, error) of one sequence."""
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    info, recs = frame_records(seq_uri)
    for r in recs:
        r["file_name"] = f"{info.name}/{os.path.basename(r['uri'])}"
    return ray.data.from_items(recs).map_batches(_decode_batch, batch_size=16, batch_format="numpy")


def read_video(uris: list[str]):
    """Ordered per-frame rows of one or more videos (frame index from 1, timestamp in seconds)."""
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    return ray.data.from_items([{"uri": u} for u in uris], override_num_blocks=max(1, len(uris))).flat_map(_video_frames)
