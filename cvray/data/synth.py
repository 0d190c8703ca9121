"""Synthetic datasets with exact ground truth (COCO instance segmentation, MOT sequences).

Pure numpy / OpenCV / pycocotools; deterministic by seed. See :mod:`cvray.data.synth_coco` and
:mod:`cvray.data.synth_mot` for the conventions each format follows.

Example::

    from cvray.data.synth import make_coco, make_mot
    coco = make_coco("/tmp/synth", n_images=24, seed=0)
    mot = make_mot("/tmp/synth", n_videos=2, seed=0, camera_pan=True)
"""
from __future__ import annotations

import tempfile
from typing import Any

from cvray.data.synth_coco import SPLITS, CocoSynthConfig, make_coco
from cvray.data.synth_draw import SHAPE_NAMES
from cvray.data.synth_mot import DetNoise, MotSynthConfig, make_mot

__all__ = ["SHAPE_NAMES", "SPLITS", "CocoSynthConfig", "DetNoise", "MotSynthConfig",
           "make_coco", "make_mot", "synthesize"]


def synthesize(out: str, images: int, videos: int, seed: int, section: Any) -> dict[str, Any]:
    """Generate a COCO (+ MOT when ``videos``) dataset at ``out`` and return its layout.

    ``section`` is the ``synth`` config (image size, frames, objects per video). Data is generated
    locally (a temporary folder for ``s3://`` targets, then uploaded), so the files are the same
    wherever they land. An existing ``<out>/coco`` or ``<out>/mot`` is removed first (``replaced``).
    """
    from cvray.io import storage

    # the generator owns <out>/coco and <out>/mot: a previous dataset there is replaced whole, so no
    # stale image (or sequence) of a larger earlier run stays beside the new annotation files
    replaced = [d for d in ("coco", "mot") if storage.exists(storage.join(out, d))]
    for d in replaced:
        storage.rm_tree(storage.join(out, d))
    with tempfile.TemporaryDirectory(prefix="cvray-synth-") as tmp:
        local = tmp if storage.is_s3(out) else storage.resolve(out)[1]
        coco = make_coco(local, images, seed, image_size=tuple(section.image_size))
        mot = make_mot(local, videos, seed, n_frames=section.frames, n_objects=section.objects_per_video,
                       image_size=tuple(section.image_size)) if videos else {"sequences": []}
        files = storage.upload_tree(tmp, out) if storage.is_s3(out) else None
    result = {
        "out": out,
        "coco_root": storage.join(out, "coco"),
        "images": images,
        "splits": {k[len("images_"):]: v for k, v in coco["stats"].items() if k.startswith("images_")},
        "annotations": coco["stats"].get("annotations"),
        "videos": len(mot["sequences"]),
        "mot_root": storage.join(out, "mot") if videos else None,
        "seed": seed,
    }
    if replaced:
        result["replaced"] = [storage.join(out, d) for d in replaced]
    if files is not None:
        result["files_uploaded"] = files
    return result
