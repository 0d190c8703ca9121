"""COCO datasets as plain data: load the JSON, group annotations per image, fingerprint.

Pure core (no Ray). ``file_name`` values are joined onto the images root with :func:`safe_join`,
which refuses any path that would escape that root (``../``, absolute paths).
"""
from __future__ import annotations

import hashlib
import json
import posixpath
from collections import defaultdict
from typing import Any, Iterator

from cvray.io import storage

__all__ = ["DatasetError", "PathEscapeError", "dataset_fingerprint", "image_records", "load_coco",
           "safe_join"]


class DatasetError(ValueError):
    """The dataset cannot be read; the message names the file and the problem."""


class PathEscapeError(DatasetError):
    pass


def safe_join(root: str, rel: str) -> str:
    """Join a dataset-relative path onto ``root``, refusing paths that escape it."""
    rel = str(rel).replace("\\", "/")
    norm = posixpath.normpath(rel)
    if rel.startswith("/") or norm.startswith("..") or "://" in rel or norm == ".":
        raise PathEscapeError(f"{rel!r}: image path escapes the dataset root {root}")
    return storage.join(root, norm)


def load_coco(uri: str) -> dict[str, Any]:
    """Read a COCO JSON file (local or S3) and check its top-level shape."""
    data = storage.read_json(uri, error=DatasetError, expect=dict,
                             what="top level must be an object with images/annotations/categories")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise DatasetError(f"{uri}: missing top-level key {key!r}")
        if not isinstance(data[key], list):
            raise DatasetError(f"{uri}: {key!r} must be a list")
    return data


def image_records(coco: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One record per image: ``image_id, file_name, height, width, annotations`` (+ extra keys)."""
    per_image: dict[Any, list] = defaultdict(list)
    for ann in coco["annotations"]:
        if isinstance(ann, dict):
            per_image[ann.get("image_id")].append(ann)
    for img in coco["images"]:
        if not isinstance(img, dict):
            continue
        rec = {
            "image_id": img.get("id"),
            "file_name": img.get("file_name"),
            "height": img.get("height"),
            "width": img.get("width"),
            "annotations": per_image.get(img.get("id"), []),
        }
        for extra in ("scene_id", "video_id", "frame_id", "source"):
            if extra in img:
                rec[extra] = img[extra]
        yield rec


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dataset_fingerprint(annotation_uris: dict[str, str]) -> dict[str, Any]:
    """Hash of each split's annotation file and of its image list; a combined hash over all.

    Two runs with the same ``combined`` value saw byte-identical annotations and the same images
    (by name and declared size) in every split.
    """
    splits = {}
    for split, uri in sorted(annotation_uris.items()):
        raw = storage.read_bytes(uri)
        try:
            images = json.loads(raw).get("images", [])
        except (json.JSONDecodeError, AttributeError):
            images = []
        listing = sorted(f"{i.get('file_name')}|{i.get('width')}x{i.get('height')}"
                         for i in images if isinstance(i, dict))
        splits[split] = {
            "annotations_uri": uri,
            "annotations_sha256": _sha(raw),
            "image_list_sha256": _sha("\n".join(listing).encode()),
            "images": len(listing),
        }
    combined = _sha(json.dumps({k: (v["annotations_sha256"], v["image_list_sha256"])
                                for k, v in splits.items()}, sort_keys=True).encode())
    return {"splits": splits, "combined": combined}
