"""Read ground truth and predictions for evaluation from files, folders or runs (local or S3).

Predictions come as COCO results JSON, one predictions Parquet file, a folder of parts, or a run
folder holding ``tables/predictions``. Parquet is converted through the versioned Detections
schema, so a reader of another schema version gets a clear error.
"""
from __future__ import annotations


import math
import posixpath

from cvray.io import storage
from cvray.runs.errors import InputError
from cvray.predict.records import Detections, detections_from_table, to_coco_results

__all__ = ["load_predictions", "load_detections", "load_prediction_images", "match_to_gt", "PredictionsError"]


class PredictionsError(InputError):
    """Predictions that cannot be read; names the URI (an :class:`InputError`: exit 2)."""


def _table_uri(uri: str) -> str | None:
    """The folder holding Parquet parts for ``uri`` (a run, a tables folder, or parts)."""
    for cand in (storage.join(uri, "tables", "predictions"), uri):
        if storage.list_files(cand, suffix=".parquet", recursive=False):
            return cand
    return None


def load_detections(uri: str) -> list[Detections]:
    """Detections records from a predictions Parquet file, folder of parts, or run folder."""
    try:
        return _load_detections(uri)
    except storage.StorageError as exc:  # the file the user named is unreadable: exit 2, one line
        raise PredictionsError(str(exc)) from exc


def _load_detections(uri: str) -> list[Detections]:
    if uri.endswith(".parquet"):
        return detections_from_table(storage.read_parquet(uri))
    folder = _table_uri(uri)
    if folder is None:
        raise PredictionsError(f"{uri}: no predictions Parquet found (expected a .parquet file, a folder "
                               f"of parts, or a run with tables/predictions)")
    return detections_from_table(storage.read_table_dir(folder))


def _check_results(uri: str, results: list) -> list[dict]:
    """Each COCO result is an object whose ``bbox`` (when given) is 4 finite numbers."""
    for i, r in enumerate(results):
        if not isinstance(r, dict):
            raise PredictionsError(f"{uri}: record #{i} is {type(r).__name__}, not a detection object")
        box = r.get("bbox")
        if box is None:
            continue
        if (not isinstance(box, (list, tuple)) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in box)):
            raise PredictionsError(f"{uri}: record #{i} (image_id={r.get('image_id')}) has bbox {box!r}; "
                                   "a COCO bbox is 4 finite numbers [x, y, width, height]")
    return results


def load_predictions(uri: str) -> list[dict]:
    """COCO results list from JSON or predictions Parquet."""
    return load_prediction_images(uri)[0]


def load_prediction_images(uri: str) -> tuple[list[dict], dict[int, str] | None]:
    """(COCO results, {image_id: file_name} of the predicted images or None when they carry no
    names). Names come from the predictions table's ``file_name`` (video frames excepted: one file
    holds many frames) or from a ``file_name`` key on every JSON result."""
    if uri.endswith(".json"):
        results = _check_results(uri, storage.read_json(uri, error=PredictionsError, expect=list,
                                                        what="COCO results must be a JSON list of detections"))
        names: dict[int, str] = {}
        for r in results:
            if not isinstance(r.get("file_name"), str):
                return results, None
            names.setdefault(r.get("image_id"), r["file_name"])
        return results, names or None
    records = load_detections(uri)
    named = bool(records) and all(d.file_name and d.frame_index is None for d in records)
    return to_coco_results(records), ({int(d.image_id): d.file_name for d in records} if named else None)


def _norm(name: str) -> str:
    name = str(name).replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return posixpath.normpath(name) if name else name


def _prefix_twin(name: str, gt_names: dict[str, int]) -> str | None:
    """A GT name equal to ``name`` up to leading folders (never used to match: only to explain)."""
    for g in gt_names:
        if g.endswith("/" + name) or name.endswith("/" + g):
            return g
    return None


def match_to_gt(results: list[dict], names: dict[int, str] | None, gt: dict, *, pred_uri: str,
                gt_uri: str) -> tuple[list[dict], dict]:
    """Give every prediction the ground truth's id of its image.

    With ``names`` (the predictions carry file names) images are matched by ``file_name``:
    predictions on images the GT does not have are left out and counted; an image whose
    prediction ``image_id`` is a GT id of *another* file (the two identities disagree), or no
    name in the GT at all, is an :class:`InputError` naming both files. Without names, by id.
    Returns (results with GT ids, {"matched_by", "pred_images", "matched_images",
    "pred_images_not_in_gt", ...}).
    """
    images = gt.get("images") or []
    if not names:
        return results, {"matched_by": "image_id", "pred_images": len({r.get("image_id") for r in results})}
    by_name: dict[str, int] = {}
    by_id: dict[int, str] = {}
    for im in images:
        if isinstance(im, dict) and "file_name" in im and "id" in im:
            by_name.setdefault(_norm(im["file_name"]), im["id"])
            by_id[im["id"]] = _norm(im["file_name"])
    pred_names = {pid: _norm(n) for pid, n in names.items()}
    if len(set(pred_names.values())) < len(pred_names):  # one name, many ids: names are no identity
        return results, {"matched_by": "image_id", "pred_images": len(pred_names)}
    remap = {pid: by_name[n] for pid, n in pred_names.items() if n in by_name}
    if not remap:
        pid, n = next(iter(pred_names.items()))
        near = _prefix_twin(n, by_name)
        if near is not None:  # same file, named from another folder: say how to line them up
            raise InputError(f"{pred_uri}: none of its {len(pred_names)} images' file names is in {gt_uri}; "
                             f"they differ by a folder prefix (e.g. {n!r} in the predictions, {near!r} in the "
                             f"ground truth): predict on the folder the ground truth's file names are relative "
                             f"to, or on the ground truth itself (cvray predict --input {gt_uri})")
        example_gt = next(iter(by_name), None)
        raise InputError(f"{pred_uri}: none of its {len(pred_names)} images' file names is in {gt_uri} "
                         f"(e.g. prediction image_id={pid} is {n!r}"
                         + (f"; the ground truth has {example_gt!r}" if example_gt else "")
                         + "): the predictions are of other images (another split?)")
    conflicts = [(pid, n, by_id[pid]) for pid, n in pred_names.items()
                 if pid in by_id and by_id[pid] != n]
    if conflicts:
        pid, n, gt_name = conflicts[0]
        raise InputError(f"{pred_uri} and {gt_uri} disagree on image identity for {len(conflicts)} of "
                         f"{len(pred_names)} images: e.g. image_id={pid} is {n!r} in the predictions but "
                         f"{gt_name!r} in the ground truth (renumbered, or another split?); predict on the "
                         f"ground truth's COCO JSON (cvray predict --input {gt_uri}) to keep its ids")
    out = [{**r, "image_id": remap[r["image_id"]]} for r in results if r.get("image_id") in remap]
    missing = sorted(n for pid, n in pred_names.items() if pid not in remap)
    info = {"matched_by": "file_name", "pred_images": len(pred_names), "matched_images": len(remap),
            "pred_images_not_in_gt": len(missing),
            "renumbered_images": sum(1 for pid, g in remap.items() if pid != g)}
    if missing:
        info["not_in_gt_example"] = missing[0]
    return out, info
