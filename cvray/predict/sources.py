"""Inputs of ``cvray predict``: image folders, COCO datasets and videos, local or S3.

:func:`list_units` turns an input URI into *units of work* (plain dicts, no Ray): one unit per
image, or one per video segment of ``segment_frames`` frames. :func:`read_unit` turns a unit into
rows (image + identity), turning every failure into a row with ``ok=False`` and the reason, so
that the row count out of the read stage always equals the number of input images/frames.

Image ids: COCO inputs keep the dataset's ids; folders number files in sorted order from 1;
video frames get ``video_index * VIDEO_ID_STRIDE + frame_index``.
"""
from __future__ import annotations

import os
import posixpath
import tempfile
from typing import Any, Iterator

import numpy as np

from cvray.data.coco import DatasetError, image_records, load_coco, safe_join
from cvray.data.decode import ImageDecodeError, decode_image
from cvray.io import storage
from cvray.io.video import frame_time_s, nominal_fps
from cvray.runs.errors import InputError as _UserInputError

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "VIDEO_ID_STRIDE", "InputError", "list_units",
           "read_unit", "count_video_frames", "video_frame_times"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
VIDEO_ID_STRIDE = 1_000_000
_EMPTY = np.zeros((0, 0, 3), np.uint8)


class InputError(_UserInputError):
    """The input URI holds nothing cvray can predict on; names the URI (the CLI: one line, exit 2)."""


def _base(uri: str) -> str:
    return posixpath.basename(uri.rstrip("/"))


def _listed_root(uri: str) -> str:
    """``uri`` in the form :func:`storage.list_files` returns its files in (absolute when local)."""
    return ("s3://" if storage.is_s3(uri) else "") + storage.resolve(uri)[1].rstrip("/")


def count_video_frames(uri: str) -> tuple[int, float]:
    """(frames, nominal fps) of a video, frames counted by decoding (container counts can lie)."""
    times, fps = video_frame_times(uri)
    return len(times), fps


def video_frame_times(uri: str) -> tuple[list[float], float]:
    """(presentation time of every frame in decode order, nominal fps), by decoding the video:
    the times make a segment's rows exact (a stream with dropped frames has gaps) and check that a
    seek landed on the frame it asked for."""
    import cv2

    with tempfile.TemporaryDirectory() as tmp:
        local = storage.local_copy(uri, tmp)
        cap = cv2.VideoCapture(local)
        if not cap.isOpened():
            return [], 0.0
        cv2_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        fps = nominal_fps(local, cv2_fps)
        times: list[float] = []
        while cap.grab():
            times.append(frame_time_s(cap, len(times), fps))
        cap.release()
    return times, fps


def list_units(uri: str, *, images_root: str | None = None, video_stride: int = 1,
               segment_frames: int = 64) -> list[dict[str, Any]]:
    """Units of work for an image folder, a COCO JSON, a video file, or a folder of videos."""
    uri = str(uri)
    low = uri.lower()
    if low.endswith(".json"):
        coco = load_coco(uri)
        root = images_root or storage.join(posixpath.dirname(posixpath.dirname(uri.rstrip("/")))
                                           if storage.is_s3(uri) else os.path.dirname(os.path.dirname(
                                               os.path.abspath(uri))), "images")
        units = []
        for rec in image_records(coco):
            try:
                u = safe_join(root, rec["file_name"])
            except DatasetError as exc:
                u, err = "", str(exc)
            else:
                err = ""
            units.append({"kind": "image", "uri": u, "file_name": str(rec["file_name"]),
                          "image_id": int(rec["image_id"]), "error": err})
        return units
    if low.endswith(VIDEO_EXTENSIONS):
        return _video_units([uri], video_stride, segment_frames)
    files = storage.list_files(uri)
    if not files:
        raise InputError(f"{uri}: no such file or folder, or it is empty")
    images = [f for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
    videos = [f for f in files if f.lower().endswith(VIDEO_EXTENSIONS)]
    if not images and not videos:
        raise InputError(f"{uri}: no images ({', '.join(IMAGE_EXTENSIONS)}) or videos found")
    # list_files returns resolved URIs (absolute local paths): names are relative to the same form
    prefix = _listed_root(uri) + "/"
    units = [{"kind": "image", "uri": f, "file_name": f[len(prefix):] if f.startswith(prefix) else _base(f),
              "image_id": i + 1, "error": ""} for i, f in enumerate(images)]
    return units + _video_units(videos, video_stride, segment_frames, first_index=1)


def _video_units(videos: list[str], stride: int, segment_frames: int, first_index: int = 0) -> list[dict]:
    units = []
    for v, uri in enumerate(videos, start=first_index):
        times, fps = video_frame_times(uri)
        n = len(times)
        if n == 0:
            units.append({"kind": "video", "uri": uri, "file_name": _base(uri), "video_index": v,
                          "start": 0, "stop": 0, "stride": stride, "fps": 0.0,
                          "error": f"{uri}: cannot open video or it has no frames"})
            continue
        for s in range(0, n, segment_frames):
            units.append({"kind": "video", "uri": uri, "file_name": _base(uri), "video_index": v,
                          "start": s, "stop": min(n, s + segment_frames), "stride": stride, "fps": fps,
                          "times": times[s:s + segment_frames], "error": ""})
    return units


def _image_row(unit: dict, image: np.ndarray, error: str, rule: str) -> dict[str, Any]:
    return {"image_id": int(unit["image_id"]), "file_name": unit["file_name"], "uri": unit["uri"],
            "frame_index": -1, "timestamp_s": float("nan"), "image": image, "ok": not error,
            "rule": rule, "error": error}


def read_unit(unit: dict[str, Any], *, with_bytes: bool = False) -> Iterator[dict[str, Any]]:
    """Decode one unit into rows (RGB uint8 images); failures become ``ok=False`` rows.
    ``with_bytes``: an image row also carries its file's bytes as ``encoded`` (drift reads the
    JPEG quantisation tables there)."""
    if unit["kind"] == "image":
        if unit.get("error"):
            yield _image_row(unit, _EMPTY, unit["error"], "image.path_escape")
            return
        try:
            data = storage.read_bytes(unit["uri"])
            img = decode_image(data, unit["file_name"])
            row = _image_row(unit, img, "", "")
            if with_bytes:
                row["encoded"] = data
            yield row
        except ImageDecodeError as exc:
            yield _image_row(unit, _EMPTY, str(exc), exc.rule)
        except storage.StorageError as exc:
            yield _image_row(unit, _EMPTY, str(exc), "image.missing")
        return
    yield from _read_video_segment(unit)


def _open_at(path: str, start: int, start_time: float | None, fps: float):
    """(capture, first frame or None) positioned at frame ``start`` exactly. A seek
    (``CAP_PROP_POS_FRAMES``) is taken only when the frame it delivers has ``start``'s
    presentation time: OpenCV seeks by time at the average rate, so on a stream with dropped
    frames it lands on another frame while reporting the index asked for. Otherwise the video is
    decoded from its start."""
    import cv2

    cap = cv2.VideoCapture(path)
    if not start:
        return cap, None
    if start_time is not None and cap.set(cv2.CAP_PROP_POS_FRAMES, start):
        got, frame = cap.read()
        tol = 0.5 / fps if fps else 1e-3
        if got and abs(frame_time_s(cap, start, fps) - start_time) <= tol:
            return cap, frame
    cap.release()
    cap = cv2.VideoCapture(path)
    for _ in range(start):
        cap.grab()
    return cap, None


def _read_video_segment(unit: dict[str, Any]) -> Iterator[dict[str, Any]]:
    import cv2

    base = int(unit["video_index"]) * VIDEO_ID_STRIDE
    frames = range(unit["start"], unit["stop"], 1)
    wanted = [f for f in frames if f % unit["stride"] == 0]

    times = unit.get("times") or []

    def row(f, img, err, rule):
        k = f - unit["start"]
        ts = times[k] if 0 <= k < len(times) else (f / unit["fps"] if unit["fps"] else float("nan"))
        return {"image_id": base + f, "file_name": unit["file_name"], "uri": unit["uri"], "frame_index": f,
                "timestamp_s": ts, "image": img,
                "ok": not err, "rule": rule, "error": err}

    if unit.get("error"):
        yield row(-1, _EMPTY, unit["error"], "video.unreadable")
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = storage.local_copy(unit["uri"], tmp)
        cap, first = _open_at(path, unit["start"], times[0] if times else None, unit["fps"])
        f = unit["start"]
        want = set(wanted)
        while f < unit["stop"]:
            if first is not None:
                got, frame, first = True, first, None
            else:
                got, frame = cap.read()
            if not got:
                break
            if f in want:
                yield row(f, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), "", "")
                want.discard(f)
            f += 1
        cap.release()
    for f in sorted(want):  # frames the decoder could not deliver still get their row
        yield row(f, _EMPTY, f"{unit['uri']}: frame {f} could not be decoded", "video.frame_unreadable")
