"""The demo's capstone: the model it just trained detects, segments and tracks the synthetic videos.

Each synthetic sequence's ``<SEQ>.mp4`` goes through the same path as ``cvray track --video``
(:func:`cvray.track.video.track_video`: letterboxed inference with the trained checkpoint, masks
mapped back, the default tracker, MOTChallenge txt + Parquet + per-frame JSON + an annotated
review mp4), and the tracks are scored against the sequence's exact ground truth with the same
metric code as ``cvray track eval`` (HOTA / IDF1 / MOTA, class-agnostic). The tracker-only row of
the demo (the generator's noisy detections) stays beside it as the reference.
"""
from __future__ import annotations

import logging
from typing import Any

from cvray.io import storage

__all__ = ["detect_track_videos"]

log = logging.getLogger(__name__)


def detect_track_videos(mot_root: str, model_config: Any, category_ids: list[int], track_config: Any,
                        out_uri: str, *, input_size: tuple[int, int], score_threshold: float = 0.3) -> dict[str, Any]:
    """Detect + track every ``<mot_root>/<SEQ>/<SEQ>.mp4``; metrics against ``<SEQ>/gt/gt.txt``.

    ``model_config`` is a :class:`cvray.models.ModelConfig` whose ``weights`` is the trained
    checkpoint; ``category_ids`` maps model labels to the dataset's categories.
    """
    from cvray.predict.config import GeometryConfig, PostprocessConfig
    from cvray.predict.engine import ModelFactory, Predictor
    from cvray.track.io import find_sequences, read_mot
    from cvray.track.metrics.evaluate import combine, evaluate_sequence, summarize
    from cvray.track.video import track_video

    gts = find_sequences(mot_root, "gt")
    predictor = Predictor(ModelFactory(model_config), category_ids=category_ids, device="cpu",
                          postprocess_cfg=PostprocessConfig(score_threshold=score_threshold))
    geometry = GeometryConfig(mode="letterbox", size=tuple(input_size))
    partials, per_seq, videos = [], [], []
    for name, gt_uri in sorted(gts.items()):
        video = storage.join(mot_root, name, f"{name}.mp4")
        if not storage.exists(video):
            log.warning("%s: no video %s; skipped", name, video)
            continue
        s = track_video(video, predictor, out_uri, track_config=track_config, geometry=geometry, name=name)
        gt = read_mot(gt_uri)
        pred_uri = storage.join(out_uri, f"{name}.txt")
        pr = read_mot(pred_uri) if storage.exists(pred_uri) else gt[:0]
        part = evaluate_sequence(gt, pr, num_frames=s["frames"])
        partials.append(part)
        m = summarize(part)
        per_seq.append({"sequence": name, "frames": s["frames"], "tracks": s["tracks"],
                        **{k: m[k] for k in ("HOTA", "IDF1", "MOTA")}})
        if s.get("review_video"):
            videos.append(s["review_video"])
    if not partials:
        return {"skipped": f"no <SEQ>/<SEQ>.mp4 videos under {mot_root}"}
    m = summarize(combine(partials))
    return {"sequences": len(partials), **{k: m[k] for k in ("HOTA", "IDF1", "MOTA", "IDSW")},
            "per_sequence": per_seq, "review_videos": videos, "out": out_uri}


def demo_detect_track(run: Any, cfg: Any, synth: dict) -> dict[str, Any]:
    """Stage of ``cvray demo`` after training: the run's trained checkpoint on the synthetic videos."""
    from cvray.data.coco import load_coco
    from cvray.train.data import CategoryMap
    from cvray.train.demo import demo_train_config

    if not synth.get("mot_root"):
        return {"skipped": "no synthetic sequences (--videos 0)"}
    ckpt = run.summary.get("best_checkpoint") or run.summary.get("checkpoint")
    if not ckpt:
        return {"skipped": "no trained checkpoint in this run"}
    cats = CategoryMap.from_coco(load_coco(storage.join(synth["coco_root"], "annotations", "instances_train.json")))
    mcfg = demo_train_config(cfg).model.model_copy(update={"num_classes": cats.num_classes, "weights": ckpt,
                                                           "strict_weights": True})
    out = detect_track_videos(synth["mot_root"], mcfg, list(cats.ids), cfg.track, run.path("artifacts", "detect_track"),
                              input_size=(mcfg.min_size, mcfg.min_size))
    out["checkpoint"] = ckpt
    return out
