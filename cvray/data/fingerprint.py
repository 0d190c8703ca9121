"""Dataset fingerprints recorded in every run that read a dataset (pure: storage reads only).

* COCO: :func:`cvray.data.coco.dataset_fingerprint` (per split: annotation file sha256 and the
  sha256 of the sorted ``file_name|WxH`` image list; ``combined`` over all splits).
* MOT and other file inputs: :func:`files_fingerprint` (sha256 of each named file: a sequence's
  ``det``/``gt`` txt, a predictions Parquet, a video; ``combined`` over all).
* Folders of images: :func:`listing_fingerprint` (sha256 of the sorted relative file names).

Two runs with the same ``combined`` value read the same bytes (or, for listings, the same names).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from cvray.data.coco import dataset_fingerprint as coco_fingerprint
from cvray.io import storage

__all__ = ["coco_fingerprint", "files_fingerprint", "listing_fingerprint"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _combined(parts: Mapping[str, Any]) -> str:
    return _sha(json.dumps(parts, sort_keys=True).encode())


def files_fingerprint(files: Mapping[str, str | None]) -> dict[str, Any]:
    """``{"files": {name: {"uri", "sha256", "bytes"}}, "combined": sha}`` (None entries skipped)."""
    out: dict[str, dict[str, Any]] = {}
    for name, uri in sorted(files.items()):
        if not uri:
            continue
        if not _is_file(uri):
            fp = listing_fingerprint(uri)
            out[name] = {"uri": uri, "listing_sha256": fp["listing_sha256"], "files": fp["files"]}
            continue
        data = storage.read_bytes(uri)
        out[name] = {"uri": uri, "sha256": _sha(data), "bytes": len(data)}
    return {"files": out, "combined": _combined({k: v.get("sha256") or v.get("listing_sha256")
                                                 for k, v in out.items()})}


def listing_fingerprint(folder: str) -> dict[str, Any]:
    """Sorted relative names of every file under ``folder``, hashed (contents are not read)."""
    prefix = folder.rstrip("/") + "/"
    names = sorted(f[len(prefix):] if f.startswith(prefix) else f for f in storage.list_files(folder))
    sha = _sha("\n".join(names).encode())
    return {"uri": folder, "listing_sha256": sha, "files": len(names), "combined": sha}


def _is_file(uri: str) -> bool:
    import pyarrow.fs as pafs

    fs, path = storage.resolve(uri)
    return fs.get_file_info(path).type == pafs.FileType.File
