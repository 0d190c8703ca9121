"""Read ground truth and predictions for evaluation from files, folders or runs (local or S3).

Predictions come as COCO results JSON, one predictions Parquet file, a folder of parts, or a run
folder holding ``tables/predictions``. Parquet is converted through the versioned Detections
schema, so a reader of another schema version gets a clear error.
"""
from __future__ import annotations


from cvray.io import storage
from cvray.predict.records import Detections, detections_from_table, to_coco_results

__all__ = ["load_predictions", "load_detections", "PredictionsError"]


class PredictionsError(ValueError):
    """Predictions that cannot be read; names the URI."""


def _table_uri(uri: str) -> str | None:
    """The folder holding Parquet parts for ``uri`` (a run, a tables folder, or parts)."""
    for cand in (storage.join(uri, "tables", "predictions"), uri):
        if storage.list_files(cand, suffix=".parquet", recursive=False):
            return cand
    return None


def load_detections(uri: str) -> list[Detections]:
    """Detections records from a predictions Parquet file, folder of parts, or run folder."""
    if uri.endswith(".parquet"):
        return detections_from_table(storage.read_parquet(uri))
    folder = _table_uri(uri)
    if folder is None:
        raise PredictionsError(f"{uri}: no predictions Parquet found (expected a .parquet file, a folder "
                               f"of parts, or a run with tables/predictions)")
    return detections_from_table(storage.read_table_dir(folder))


def load_predictions(uri: str) -> list[dict]:
    """COCO results list from JSON or predictions Parquet."""
    if uri.endswith(".json"):
        return storage.read_json(uri, error=PredictionsError, expect=list,
                                 what="COCO results must be a JSON list of detections")
    return to_coco_results(load_detections(uri))
