"""Tracking workflows: resolve sequence jobs from inputs, track them (Ray actors or in process),
write per-sequence outputs plus ``sequences`` / ``metrics`` tables and issues into a run.

Used by ``cvray track`` and by ``cvray demo``; Ray is imported only when actors are used.
"""
from __future__ import annotations

import posixpath
from typing import Any

from cvray.io import storage
from cvray.runs.issues import issue
from cvray.track.config import TrackConfig
from cvray.track.io import find_sequences, is_file, read_predictions, read_seqinfo
from cvray.track.metrics import combine, summarize
from cvray.track.records import metrics_to_table, sequences_to_table
from cvray.track.workflow import SequenceJob, process_sequence

__all__ = ["EVAL_KEYS", "metric_row", "sequence_jobs", "track_jobs"]


EVAL_KEYS = ("MOTA", "MOTP", "IDF1", "IDP", "IDR", "IDSW", "Frag", "MT", "PT", "ML", "FP", "FN",
             "HOTA", "DetA", "AssA", "LocA")


def metric_row(d: dict) -> dict:
    """The reported keys, full precision (floats) and exact counts (ints)."""
    return {k: (float(v) if isinstance(v, float) else int(v)) for k, v in d.items() if k in EVAL_KEYS}


def sequence_jobs(det: str, *, seqinfo: str | None = None, frame_rate: float | None = None
                  ) -> list[SequenceJob]:
    """Jobs for a det.txt, a predictions Parquet, or a folder of MOTChallenge sequences."""
    det = det.rstrip("/")
    if not storage.exists(det):
        raise FileNotFoundError(f"{det}: no such file or folder")
    if det.endswith(".parquet") or (not is_file(det) and storage.list_files(det, ".parquet", recursive=False)):
        fr = frame_rate or 30.0
        return [SequenceJob(name=name, det_rows=rows.tolist(), frame_rate=fr)
                for name, rows in read_predictions(det).items()]
    found = find_sequences(det, "det")
    jobs = []
    for name, uri in found.items():
        seq_dir = posixpath.dirname(posixpath.dirname(uri))
        ini = seqinfo if (seqinfo and len(found) == 1) else storage.join(seq_dir, "seqinfo.ini")
        info = read_seqinfo(ini) if storage.exists(ini) else None
        if info is None and seqinfo:
            raise FileNotFoundError(f"{seqinfo}: no such file")
        gt = storage.join(seq_dir, "gt", "gt.txt")
        img = storage.join(seq_dir, info.im_dir) if info else None
        jobs.append(SequenceJob(
            name=info.name if info and len(found) == 1 and name == posixpath.basename(det).split(".")[0]
            else name,
            det_uri=uri, frame_rate=frame_rate or (info.frame_rate if info else 30.0),
            num_frames=info.seq_length if info else None,
            image_dir=img if img and storage.exists(img) else None,
            im_ext=info.im_ext if info else ".jpg",
            gt_uri=gt if storage.exists(gt) else None))
    return jobs


def track_jobs(run: Any, jobs: list[SequenceJob], tcfg: TrackConfig, out: str, *, use_ray: bool,
               render: bool = False, ray_cfg: Any = None, address: str | None = None) -> dict[str, Any]:
    """Track every job; failed sequences become issue rows while the others finish."""
    if use_ray:
        from cvray.raycluster import ray_context
        from cvray.track.distributed import track_sequences

        with ray_context(ray_cfg, address):
            results = track_sequences(jobs, tcfg, out, render=render)
    else:
        results = []
        for job in jobs:
            try:
                results.append(process_sequence(job, tcfg, out, render=render))
            except (OSError, ValueError) as exc:  # same error row as an actor would return
                results.append({"sequence": job.name, "error": f"{type(exc).__name__}: {exc}",
                                "file": job.det_uri})
    errors = [r for r in results if "error" in r]
    run.add_issues(issue("track", "sequence.failed", f"{r['sequence']}: {r['error']}", file=r.get("file"))
                   for r in errors)
    ok = [r for r in results if "error" not in r]
    run.write_table("sequences", sequences_to_table(ok))
    summary: dict = {"out": out, "run_id": run.id, "sequences": len(jobs), "failed": len(errors),
                     "frames": sum(r["frames"] for r in ok), "tracks": sum(r["tracks"] for r in ok),
                     "boxes": sum(r["boxes"] for r in ok)}
    partials = [r["partial"] for r in ok if "partial" in r]
    if partials:
        metrics = {r["sequence"]: metric_row(summarize(r["partial"])) for r in ok if "partial" in r}
        metrics["combined"] = metric_row(summarize(combine(partials)))
        run.write_table("metrics", metrics_to_table(metrics))
        summary["metrics"] = metrics["combined"]
    if errors:
        summary["errors"] = {r["sequence"]: r["error"] for r in errors}
    run.summary.update(summary)
    return summary
