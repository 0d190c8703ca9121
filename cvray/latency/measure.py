"""One latency configuration measured in this process (no Ray): every stage of the inference
pipeline timed per image, warm-up iterations timed apart.

Stages (docs/latency.md): ``decode`` (read + decode the file: :func:`cvray.predict.sources.read_unit`),
``preprocess`` (letterbox to the model input), ``inference`` (the forward pass, without the two
parts below), ``nms`` (torchvision's ``roi_heads.postprocess_detections``: box decoding, score
threshold, NMS), ``mask_paste`` (``transform.postprocess``: boxes and masks pasted back to the
input size), ``postprocess`` (cvray's: letterbox undone, the policy, masks to RLE), ``tracking``
(one tracker update with the frame's detections) and ``serialization`` (the predictions record
to Arrow and Parquet bytes). ``nms`` and ``mask_paste`` are timed by wrapping those two methods
of a torchvision model; a model without them (Detectron2) has them inside ``inference``.
On CUDA every stage boundary synchronises, so a stage is charged its own kernels.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from cvray.latency.timing import StageClock, stage_stats

__all__ = ["LatencySetting", "measure_setting", "worst_case_units"]


@dataclass(frozen=True)
class LatencySetting:
    """One configuration: input size (the letterbox side), batch size, torch threads, device."""

    input_size: int
    batch_size: int
    threads: int
    device: str

    @property
    def name(self) -> str:
        return f"{self.device}_s{self.input_size}_b{self.batch_size}_t{self.threads}"


def _wrap(obj: Any, attr: str, clock: StageClock, stage: str, sync, images: list[int]) -> bool:
    fn = getattr(obj, attr, None)
    if fn is None:
        return False

    def timed(*a, **k):
        sync()
        t0 = time.perf_counter()
        out = fn(*a, **k)
        sync()
        clock.add(stage, time.perf_counter() - t0, images[0])
        return out

    setattr(obj, attr, timed)
    return True


def worst_case_units(units: list[dict], gt: dict | None, k: int) -> dict[str, list[dict]]:
    """The scenes a budget must also hold for: ``most_objects`` (the k images with the most
    ground-truth objects, when there are annotations) and ``largest_frames`` (the k largest by
    pixels, from the annotations' sizes)."""
    out: dict[str, list[dict]] = {}
    if gt and gt.get("images"):
        counts: dict[int, int] = {}
        for a in gt.get("annotations", []):
            counts[int(a["image_id"])] = counts.get(int(a["image_id"]), 0) + 1
        size = {int(im["id"]): int(im.get("width", 0)) * int(im.get("height", 0)) for im in gt["images"]}
        by_id = {int(u["image_id"]): u for u in units if "image_id" in u}
        if by_id:
            ids = sorted(by_id, key=lambda i: (-counts.get(i, 0), i))[:k]
            out["most_objects"] = [by_id[i] for i in ids]
            ids = sorted(by_id, key=lambda i: (-size.get(i, 0), i))[:k]
            out["largest_frames"] = [by_id[i] for i in ids]
    return out


def measure_setting(setting: LatencySetting, units: list[dict], *, model_config: Any, category_ids: list[int] | None,
                    postprocess: Any, track_config: Any | None, warmup: int, repeat: int = 1) -> dict[str, Any]:
    """Time ``units`` (``repeat`` passes) under ``setting`` after ``warmup`` warm-up images.

    Returns ``{"rows": per-stage stats, "warmup": per-stage stats of the warm-up images,
    "images": n, "detections": mean per image, "model_load_s": s}``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from cvray.predict.config import GeometryConfig
    from cvray.predict.engine import ModelFactory, Predictor
    from cvray.predict.preprocess import preprocess_row
    from cvray.predict.records import detections_to_table
    from cvray.predict.sources import read_unit

    t0 = time.perf_counter()
    predictor = Predictor(ModelFactory(model_config), postprocess_cfg=postprocess, category_ids=category_ids,
                          device=setting.device, num_threads=setting.threads)
    load_s = time.perf_counter() - t0
    cuda = predictor.device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    geometry = GeometryConfig(mode="letterbox", size=(setting.input_size, setting.input_size))
    tracker = None
    if track_config is not None:
        from cvray.track.records import Detections as TrackDets
        from cvray.track.sequence import build_tracker

        tracker = build_tracker(track_config, 30.0)
    clock, warm = StageClock(), StageClock()
    current = [clock]
    batch_n = [1]
    model = predictor.model
    proxy = StageClock()  # nms / mask paste, moved to the current clock after each batch
    _wrap(getattr(model, "roi_heads", None), "postprocess_detections", proxy, "nms", sync, batch_n)
    _wrap(getattr(model, "transform", None), "postprocess", proxy, "mask_paste", sync, batch_n)
    stream = [u for _ in range(max(1, repeat)) for u in units]
    order = [stream[k % len(stream)] for k in range(warmup)] + stream if stream else []
    dets_seen = []
    i = 0
    while i < len(order):
        c = warm if i < warmup else clock
        end = min(i + setting.batch_size, warmup if i < warmup else len(order))
        rows = []
        for u in order[i:end]:  # decode: one unit -> its rows (an image, or a video segment's frames)
            t = time.perf_counter()
            got = [r for r in read_unit(u) if r.get("ok")]
            if got:
                c.add("decode", time.perf_counter() - t, len(got))
                rows.extend(got)
        i = end
        if not rows:
            continue
        batch_n[0] = len(rows)
        with c.time("preprocess", len(rows)):
            pre = [preprocess_row(r, geometry) for r in rows]
        proxy.reset()
        sync()
        t = time.perf_counter()
        outs = predictor.forward([p["image"] for p in pre])
        sync()
        total = time.perf_counter() - t
        inner = sum(proxy.busy.values())  # the wrapped parts' own time, this batch
        c.add("inference", max(0.0, total - inner), len(rows))
        c.merge(proxy)
        with c.time("postprocess", len(rows)):
            recs = [predictor.to_record(o, p) for o, p in zip(outs, pre)]
        pairs = [(r, row["image"]) for r, row in zip(recs, rows) if r is not None]
        recs = [r for r, _ in pairs]
        if tracker is not None:  # the frames of the input taken as one stream
            with c.time("tracking", len(rows)):
                for r, img in pairs:
                    tracker.update(TrackDets(r.boxes, r.scores, r.labels), img)
        with c.time("serialization", len(rows)):
            buf = io.BytesIO()
            pq.write_table(detections_to_table(recs) if recs else pa.table({}), buf)
        if c is clock:
            dets_seen.extend(len(r.scores) for r in recs)
    return {"rows": stage_stats(clock), "warmup": stage_stats(warm) if warmup else [],
            "images": len(clock.samples.get("decode", [])),
            "detections": float(np.mean(dets_seen)) if dets_seen else 0.0, "model_load_s": load_s}
