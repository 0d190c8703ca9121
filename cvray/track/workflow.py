"""The track stage's workflows: ``prepare_track`` → ``run_track`` (detections → tracks, one Ray
actor per sequence or in process) and ``prepare_track_video`` → ``run_track_video`` (a video →
detect + segment → track → review mp4). ``cvray track eval`` is :mod:`cvray.track.evaluation`.

Example::

    inputs = prepare_track("MOT17/train", out="./tracks")
    with run_context("track", cfg, ray=len(inputs.jobs) > 1, dataset=lambda: track_fingerprint(inputs)) as run:
        summary = run_track(run, cfg.track, inputs, ray=len(inputs.jobs) > 1)

Each sequence writes its own files under fixed names (:mod:`cvray.track.sequence`), so a retried
sequence replaces them; a sequence that fails becomes an issue row while the others finish. The
run gets the ``sequences`` table, the ``metrics`` table (per sequence + combined, when ground truth
is found) and the issues.
"""
from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from cvray.io import storage
from cvray.runs.errors import InputError
from cvray.runs.issues import issue
from cvray.track.config import TrackConfig
from cvray.track.evaluation import metric_row
from cvray.track.io import (CLS, CONF, FRAME, H, ID, W, X, Y, MOTFormatError, find_sequences, is_file, read_mot,
                            read_predictions, read_seqinfo)
from cvray.track.metrics import combine, summarize
from cvray.track.records import metrics_to_table, sequences_to_table
from cvray.track.sequence import SequenceJob, process_sequence

__all__ = ["TrackInputs", "TrackVideoInputs", "check_drift_reference", "prepare_track", "prepare_track_video", "run_track",
           "run_track_video", "sequence_jobs", "track_fingerprint"]


@dataclass(frozen=True)
class TrackInputs:
    det: str                                   # what the user named (file or folder)
    out: str                                   # output folder for <seq>.txt, tracks/, review/
    jobs: tuple[SequenceJob, ...] = field(default=(), repr=False)
    render: bool = False
    issues: tuple = field(default=(), repr=False)  # found while resolving (bad seqinfo, rows ...)
    skipped: tuple[str, ...] = ()              # sequences that cannot be tracked (bad seqinfo)
    skipped_detections: int = 0                # detections dropped (non-positive width/height)


@dataclass(frozen=True)
class TrackVideoInputs:
    video: str
    out: str
    model: Any                                 # the resolved ModelConfig
    model_source: str
    category_ids: list[int] | None
    predict: Any                               # the predict section: postprocess, geometry, batch size


_MAX_ROW_ISSUES = 50  # per sequence; the rest are counted in one more row


def _bad_seqinfo(info, uri: str, frame_rate: float | None) -> str | None:
    """Why ``info`` cannot time a sequence (None when it can)."""
    if frame_rate is None and not (math.isfinite(info.frame_rate) and info.frame_rate > 0):
        return f"{uri}: frameRate={info.frame_rate:g} must be a positive number"
    if info.seq_length < 0:
        return f"{uri}: seqLength={info.seq_length} must be >= 0"
    return None


def _clean_rows(name: str, rows: np.ndarray, file: str | None, out: list) -> np.ndarray:
    """``rows`` without the detections of non-positive width/height (one issue row each)."""
    bad = ~((rows[:, W] > 0) & (rows[:, H] > 0)) if len(rows) else np.zeros(0, bool)
    for k, r in enumerate(rows[bad]):
        if k == _MAX_ROW_ISSUES:
            out.append(issue("track", "detection.invalid", f"{name}: {int(bad.sum()) - k} more detections "
                             "with non-positive width/height (dropped)", file=file))
            break
        out.append(issue("track", "detection.invalid", f"{name}: frame {int(r[FRAME])} detection "
                         f"x={r[X]:g} y={r[Y]:g} w={r[W]:g} h={r[H]:g} has a non-positive width or "
                         "height (dropped)", file=file))
    return rows[~bad] if bad.any() else rows


def _checked(job: SequenceJob, rows: np.ndarray | None, out: list) -> tuple[SequenceJob, int]:
    """``job`` with its invalid detections dropped (inline rows then), and how many were."""
    if rows is None:
        return job, 0
    if len(rows) == 0:
        out.append(issue("track", "sequence.no_detections", f"{job.name}: no detections: every frame "
                         "is tracked as empty", file=job.det_uri))
        return job, 0
    clean = _clean_rows(job.name, rows, job.det_uri, out)
    if len(clean) == len(rows):
        return (job if job.det_rows is None else replace(job, det_rows=clean.tolist())), 0
    return replace(job, det_rows=clean.tolist()), len(rows) - len(clean)


def _resolve_jobs(det: str, *, seqinfo: str | None = None, frame_rate: float | None = None,
                  render: bool = False) -> tuple[list[SequenceJob], list, list[str], int]:
    """``(jobs, issues, skipped sequences, dropped detections)`` for what ``det`` names.

    A sequence whose seqinfo.ini cannot time it is skipped with a ``sequence.bad_seqinfo`` row
    (the ``--seqinfo`` the user named is an :class:`InputError` instead); detections of
    non-positive size are dropped with a ``detection.invalid`` row each; an empty det.txt and
    ``render`` without frames are warnings. A det.txt that does not parse is left for the
    sequence to fail on (``sequence.failed``) while the others finish.
    """
    if frame_rate is not None and not (math.isfinite(frame_rate) and frame_rate > 0):
        raise InputError(f"--frame-rate: must be a positive number of frames per second, got {frame_rate:g}")
    det = det.rstrip("/")
    if not storage.exists(det):
        raise InputError(f"{det}: no such file or folder")
    issues: list = []
    skipped: list[str] = []
    dropped = 0
    jobs: list[SequenceJob] = []
    if det.endswith(".parquet") or (not is_file(det) and storage.list_files(det, ".parquet", recursive=False)):
        fr = frame_rate or 30.0
        for name, rows in read_predictions(det).items():
            job, n = _checked(SequenceJob(name=name, det_rows=rows.tolist(), frame_rate=fr),
                              np.asarray(rows, dtype=np.float64).reshape(-1, 10), issues)
            jobs.append(job)
            dropped += n
    else:
        found = find_sequences(det, "det")
        for name, uri in found.items():
            seq_dir = posixpath.dirname(posixpath.dirname(uri))
            named = bool(seqinfo and len(found) == 1)
            ini = seqinfo if named else storage.join(seq_dir, "seqinfo.ini")
            if seqinfo and named and not storage.exists(ini):
                raise InputError(f"{seqinfo}: no such file")
            info, why = None, None
            if storage.exists(ini):
                try:
                    info = read_seqinfo(ini)
                    why = _bad_seqinfo(info, ini, frame_rate)
                except MOTFormatError as exc:
                    why = str(exc)
            if why:
                if named:
                    raise InputError(why)
                issues.append(issue("track", "sequence.bad_seqinfo", f"{name}: {why} (sequence skipped)",
                                    file=ini))
                skipped.append(name)
                continue
            gt = storage.join(seq_dir, "gt", "gt.txt")
            img = storage.join(seq_dir, info.im_dir) if info else None
            job = SequenceJob(
                name=info.name if info and len(found) == 1 and name == posixpath.basename(det).split(".")[0]
                else name,
                det_uri=uri, frame_rate=frame_rate or (info.frame_rate if info else 30.0),
                num_frames=(info.seq_length or None) if info else None,
                image_dir=img if img and storage.exists(img) else None,
                im_ext=info.im_ext if info else ".jpg",
                gt_uri=gt if storage.exists(gt) else None)
            try:
                rows = read_mot(uri)
            except (MOTFormatError, storage.StorageError):
                rows = None  # the sequence fails on it and says why; the others go on
            job, n = _checked(job, rows, issues)
            jobs.append(job)
            dropped += n
    if render:
        issues += [issue("track", "render.no_frames", f"{j.name}: --render needs the sequence's frames "
                         "(seqinfo.ini imDir beside det/); no review video", file=j.det_uri)
                   for j in jobs if not j.image_dir]
    return jobs, issues, skipped, dropped


def sequence_jobs(det: str, *, seqinfo: str | None = None, frame_rate: float | None = None
                  ) -> list[SequenceJob]:
    """Jobs for a det.txt, a predictions Parquet, or a folder of MOTChallenge sequences (the
    sequences that can be tracked; :func:`prepare_track` also keeps the issues found)."""
    return _resolve_jobs(det, seqinfo=seqinfo, frame_rate=frame_rate)[0]


def prepare_track(det: str, *, out: str, seqinfo: str | None = None, frame_rate: float | None = None,
                  render: bool = False) -> TrackInputs:
    """Resolve ``det`` into one job per sequence (:class:`InputError` when it names nothing or a
    flag / the named seqinfo.ini is unusable); what is wrong inside the data becomes issue rows."""
    try:
        jobs, issues, skipped, dropped = _resolve_jobs(det, seqinfo=seqinfo, frame_rate=frame_rate,
                                                       render=render)
    except (FileNotFoundError, storage.StorageError) as exc:  # unusable input named by the user: exit 2
        raise InputError(str(exc)) from exc
    return TrackInputs(det=det, out=out, jobs=tuple(jobs), render=render, issues=tuple(issues),
                       skipped=tuple(skipped), skipped_detections=dropped)


def track_fingerprint(inputs: TrackInputs) -> dict[str, Any]:
    """The manifest's ``dataset``: every det.txt / gt.txt read (or the predictions Parquet)."""
    from cvray.data.fingerprint import files_fingerprint

    files = {f"{j.name}/{kind}": uri for j in inputs.jobs for kind, uri in (("det", j.det_uri), ("gt", j.gt_uri))}
    if not any(files.values()):  # detections from a predictions Parquet
        files = {"det": inputs.det}
    return files_fingerprint(files)


def _track_in_process(jobs, section: TrackConfig, out: str, render: bool,
                      on_done: Callable[[dict], None]) -> list[dict]:
    results = []
    for job in jobs:
        try:
            results.append(process_sequence(job, section, out, render=render))
        except (OSError, ValueError) as exc:  # the same error row an actor returns
            results.append({"sequence": job.name, "error": f"{type(exc).__name__}: {exc}",
                            "file": job.det_uri})
        on_done(results[-1])
    return results


def run_track(run: Any, section: TrackConfig, inputs: TrackInputs, *, ray: bool = False,
              on_progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Track every sequence (Ray actors when ``ray``: Ray must be up, the run context starts it);
    ``on_progress(done, total, frames=...)`` after each sequence."""
    jobs = list(inputs.jobs)
    done: list[dict] = []

    def on_done(result: dict) -> None:
        done.append(result)
        if on_progress is not None:
            on_progress(len(done), len(jobs), frames=sum(int(r.get("frames", 0)) for r in done))
    if ray:
        from cvray.track.distributed import track_sequences

        results = track_sequences(jobs, section, inputs.out, render=inputs.render, on_done=on_done)
    else:
        results = _track_in_process(jobs, section, inputs.out, inputs.render, on_done)
    errors = [r for r in results if "error" in r]
    found = list(inputs.issues)
    run.add_issues(found)
    run.add_issues(issue("track", "sequence.failed", f"{r['sequence']}: {r['error']}", file=r.get("file"))
                   for r in errors)
    ok = [r for r in results if "error" not in r]
    run.write_table("sequences", sequences_to_table(ok))
    summary: dict = {"out": inputs.out, "run_id": run.id, "sequences": len(jobs) + len(inputs.skipped),
                     "failed": len(errors) + len(inputs.skipped),
                     "frames": sum(r["frames"] for r in ok), "tracks": sum(r["tracks"] for r in ok),
                     "boxes": sum(r["boxes"] for r in ok)}
    if inputs.skipped:
        summary["skipped_sequences"] = list(inputs.skipped)
    if inputs.skipped_detections:
        summary["skipped_detections"] = inputs.skipped_detections
    warnings = sum(1 for i in found if i.severity == "warning")
    if warnings:
        summary["warnings"] = warnings
    if section.drift.active or section.presence_frames:
        outputs = {r["sequence"]: read_mot(r["txt"]) for r in sorted(ok, key=lambda r: r["sequence"])}
        if section.presence_frames:
            summary["presence"] = presence(section, outputs)
        if section.drift.active:
            summary["drift"] = _track_drift(run, section.drift, ok, outputs, {j.name: j.frame_rate for j in jobs})
    partials = [r["partial"] for r in ok if "partial" in r]
    if partials:
        metrics = {r["sequence"]: metric_row(summarize(r["partial"])) for r in ok if "partial" in r}
        metrics["combined"] = metric_row(summarize(combine(partials)))
        run.write_table("metrics", metrics_to_table(metrics))
        summary["metrics"] = metrics["combined"]
    offline = [r["partial_offline"] for r in ok if "partial_offline" in r]
    if offline:  # --offline: interpolated tracks, scored apart from the online numbers above
        summary["metrics_offline"] = {
            "max_gap": section.offline_max_gap,
            **{r["sequence"]: metric_row(summarize(r["partial_offline"])) for r in ok if "partial_offline" in r},
            "combined": metric_row(summarize(combine(offline)))}
    if errors:
        summary["errors"] = {r["sequence"]: r["error"] for r in errors}
    run.summary.update(summary)
    return summary


def presence(section: TrackConfig, outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Temporal evidence over the tracker's outputs (``track.presence_frames`` consecutive frames
    make a track present, ``presence_max_missed`` misses end it): the flicker it removes and what
    it costs (:mod:`cvray.track.presence`)."""
    from cvray.track.presence import mot_rows, presence_summary

    rows = [r for seq, mot in outputs.items() for r in mot_rows(mot, seq)]
    s = presence_summary(rows, n_consecutive=section.presence_frames, max_missed=section.presence_max_missed)
    keep = ("tracks", "onset_delay_mean", "tracks_never_present", "observed_not_present", "flicker_removed")
    return {"n_consecutive": section.presence_frames, "max_missed": section.presence_max_missed,
            "raw_flicker_rate": s["raw"]["flicker_rate"], "present_flicker_rate": s["present"]["flicker_rate"],
            **{k: s.get(k) for k in keep}}


def _track_drift(run: Any, drift: Any, ok: list[dict], outputs: dict[str, np.ndarray],
                 frame_rates: dict[str, float]) -> dict[str, Any]:
    """Drift of the tracker's outputs per sequence (the source): confidence, class mix, empty
    frames, track lifetimes and fragmentation over windows of frames (no image features: the
    detections are all a det.txt input has)."""
    from cvray.drift.features import FEATURES
    from cvray.drift.stream import DriftStream, write_drift

    stream = DriftStream(drift, _drift_reference(drift))
    nan = np.full(len(FEATURES), np.nan)
    for r in sorted(ok, key=lambda r: r["sequence"]):
        rows = outputs[r["sequence"]]
        fps = frame_rates.get(r["sequence"]) or 30.0
        by_frame: dict[int, np.ndarray] = {}
        if len(rows):  # read_mot sorts by frame
            frames_col, start = np.unique(rows[:, FRAME].astype(int), return_index=True)
            by_frame = {int(f): part for f, part in zip(frames_col, np.split(rows, start[1:]))}
        for f in range(1, int(r["frames"]) + 1):
            fr = by_frame.get(f, np.zeros((0, 10)))
            stream.add(r["sequence"], f, (f - 1) / fps, nan, None,
                       {"scores": fr[:, CONF], "labels": fr[:, CLS].astype(int), "track_ids": fr[:, ID].astype(int),
                        "frame_index": f})
    return write_drift(run, stream, drift)


def check_drift_reference(drift: Any) -> None:
    """Read ``track.drift.reference`` once before any run exists (InputError naming it)."""
    _drift_reference(drift)


def _drift_reference(drift: Any) -> dict | None:
    from cvray.predict.workflow import drift_reference

    return drift_reference(drift)


def prepare_track_video(predict_section: Any, *, video: str, out: str, model: str,
                        categories: str | None = None) -> TrackVideoInputs:
    """Resolve ``--model`` (as ``cvray predict`` does, from ``predict.model``) and the categories."""
    from cvray.predict.model_spec import require_num_classes, resolve_model
    from cvray.predict.workflow import resolve_categories

    if not storage.exists(video):
        raise InputError(f"{video}: no such video file")
    if not storage.is_s3(video):  # checked before any model is built
        _check_video_opens(video)
    category_ids, _ = resolve_categories(categories, None, model)
    model_cfg, source = resolve_model(model, predict_section.model, len(category_ids) if category_ids else None)
    require_num_classes(model_cfg, model)
    return TrackVideoInputs(video=video, out=out, model=model_cfg, model_source=source,
                            category_ids=category_ids, predict=predict_section)


def _check_video_opens(video: str) -> None:
    import os

    import cv2

    path = storage.resolve(video)[1]
    if os.path.isdir(path):
        raise InputError(f"{video}: is a folder; --video takes one video file")
    cap = cv2.VideoCapture(path)
    try:
        ok = cap.isOpened() and cap.grab()
    finally:
        cap.release()
    if not ok:
        raise InputError(f"{video}: not a readable video (cannot open it or it has no frames)")


def run_track_video(run: Any, section: TrackConfig, inputs: TrackVideoInputs, *,
                    on_progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Detect (+ segment) every frame, track, write the txt / Parquet / JSON and the review mp4."""
    from cvray.predict.engine import ModelFactory, Predictor
    from cvray.track.video import track_video

    p = inputs.predict
    predictor = Predictor(ModelFactory(inputs.model), postprocess_cfg=p.postprocess,
                          category_ids=inputs.category_ids)
    run.update(model={"source": inputs.model_source})
    stream = None
    if section.drift.active:
        from cvray.drift.stream import DriftStream

        stream = DriftStream(section.drift, _drift_reference(section.drift))
    summary = track_video(inputs.video, predictor, inputs.out, track_config=section, geometry=p.geometry,
                          batch_size=p.batch_size, render=True, on_progress=on_progress, drift=stream)
    if stream is not None:
        from cvray.drift.stream import write_drift

        summary["drift"] = write_drift(run, stream, section.drift)
    if section.presence_frames:
        name = summary["sequence"]
        summary["presence"] = presence(section, {name: read_mot(storage.join(inputs.out, f"{name}.txt"))})
    run.summary.update(summary)
    return summary
