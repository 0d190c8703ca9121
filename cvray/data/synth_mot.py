"""Synthetic MOTChallenge-format sequences with exact ground truth and noisy detections.

Objects are textured axis-aligned boxes moving with noisy constant velocity in world coordinates.
They bounce off walls that lie a margin *outside* the camera view, so they leave the frame and
come back later under the same id; they cross and occlude one another. Optionally the camera pans
(the whole scene, background included, translates in the image).

Conventions (what a tracker test can rely on):

* Depth order: an object whose box bottom edge is lower in the image is in front (ties: the
  higher id is in front). Pixels are painted back to front, so this order alone reproduces the
  occlusion - ``gt.txt`` plus this rule is enough to recompute every mask independently.
* ``gt.txt`` rows: ``frame, id, x, y, w, h, 1, 1, visibility`` with MOTChallenge 1-based pixel
  coordinates (the box's top-left pixel at 0-based column ``c`` is written as ``c + 1``). Boxes are
  the full object extent, even where it runs past the image border. A row exists for every frame
  in which at least one pixel of the box is inside the image.
* ``visibility`` = (pixels of the object that are inside the image and not covered by an object in
  front) / (all pixels of the box); 1.0 exactly for an unoccluded object fully inside the image.
* ``det.txt`` rows: ``frame, -1, x, y, w, h, score, -1, -1, -1`` (same 1-based coordinates,
  boxes clipped to the image), see :class:`DetNoise`.

Example::

    info = make_mot("/tmp/synth", n_videos=2, seed=0, n_frames=40)
    info["sequences"][0]["gt"]  # -> /tmp/synth/mot/SYN-01/gt/gt.txt
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cvray.data.synth_draw import background, fill_texture

__all__ = ["DetNoise", "MotSynthConfig", "make_mot", "render_order", "visibilities"]


@dataclass(frozen=True)
class DetNoise:
    """How ``det.txt`` departs from the ground truth.

    * ``drop_rate``: probability that a target with visibility >= ``min_visibility`` is missed.
    * ``min_visibility``: targets less visible than this are never detected.
    * ``jitter``: std of box-corner noise as a fraction of the box width/height.
    * ``fp_per_frame``: mean (Poisson) number of false positives per frame.
    * ``low_score_rate``: fraction of true detections given a low score in ``low_score``
      (the second-stage detections of ByteTrack-style trackers).
    * ``high_score`` / ``low_score`` / ``fp_score``: uniform score ranges.
    """

    drop_rate: float = 0.1
    min_visibility: float = 0.1
    jitter: float = 0.05
    fp_per_frame: float = 0.3
    low_score_rate: float = 0.1
    high_score: tuple[float, float] = (0.6, 1.0)
    low_score: tuple[float, float] = (0.1, 0.5)
    fp_score: tuple[float, float] = (0.1, 0.7)


@dataclass(frozen=True)
class MotSynthConfig:
    """Motion and appearance knobs (lengths as fractions of the image side unless noted)."""

    frame_rate: int = 10
    box_size: tuple[float, float] = (0.12, 0.3)  # box height range; width = height * aspect
    aspect: tuple[float, float] = (0.4, 0.8)
    speed: tuple[float, float] = (0.01, 0.03)  # per frame
    velocity_noise: float = 0.002  # per-frame random acceleration (std)
    max_speed: float = 0.05
    wall_margin: float = 0.2  # walls lie this far outside the view, so objects leave and return
    pan_speed: float = 0.01  # camera translation per frame when camera_pan=True
    jpeg_quality: int = 90


def render_order(boxes: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Indices that paint ``boxes`` (N x 4 x,y,w,h) back to front: bottom edge, then id."""
    return np.lexsort((ids, boxes[:, 1] + boxes[:, 3]))


def visibilities(boxes: np.ndarray, ids: np.ndarray, height: int, width: int) -> np.ndarray:
    """Visible fraction of each integer box (0-based x, y, w, h) under :func:`render_order`.

    Each object's own box area is the denominator; pixels outside the image or covered by a box
    in front count as hidden.
    """
    owner = np.full((height, width), -1, dtype=np.int64)
    for i in render_order(boxes, ids):
        x, y, w, h = (int(v) for v in boxes[i])
        owner[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = i
    counts = np.bincount(owner[owner >= 0].ravel(), minlength=len(boxes))
    return counts / np.maximum(boxes[:, 2] * boxes[:, 3], 1)


def _simulate(n_objects, n_frames, h, w, cfg: MotSynthConfig, camera_pan, rng):
    """World trajectories -> per-frame integer image boxes (N_frames x N_obj x 4) and camera."""
    side = float(min(h, w))
    bh = rng.uniform(*cfg.box_size, size=n_objects) * side
    bw = bh * rng.uniform(*cfg.aspect, size=n_objects)
    sizes = np.stack([np.maximum(np.round(bw), 2), np.maximum(np.round(bh), 2)], axis=1)
    pos = np.stack([rng.uniform(0, w, n_objects), rng.uniform(0, h, n_objects)], axis=1) - sizes / 2
    ang = rng.uniform(0, 2 * np.pi, n_objects)
    vel = rng.uniform(*cfg.speed, size=n_objects)[:, None] * side * np.stack(
        [np.cos(ang), np.sin(ang)], axis=1)
    if camera_pan:
        pang = rng.uniform(0, 2 * np.pi)
        pan = cfg.pan_speed * side * np.array([np.cos(pang), np.sin(pang)])
    else:
        pan = np.zeros(2)
    margin = cfg.wall_margin * side
    boxes = np.zeros((n_frames, n_objects, 4), dtype=np.int64)
    cams = np.zeros((n_frames, 2), dtype=np.int64)
    cam = np.zeros(2)
    for t in range(n_frames):
        cams[t] = np.round(cam)
        img_pos = np.round(pos) - cams[t]
        boxes[t, :, :2] = img_pos
        boxes[t, :, 2:] = sizes
        # constant velocity + noise, speed capped; bounce on walls relative to the current view
        vel += rng.normal(0, cfg.velocity_noise * side, size=vel.shape)
        speed = np.linalg.norm(vel, axis=1, keepdims=True)
        vel *= np.minimum(1.0, cfg.max_speed * side / np.maximum(speed, 1e-9))
        pos += vel
        cam += pan
        rel = pos - cam
        lo, hi = -margin - sizes, np.array([w, h]) + margin
        vel = np.where((rel < lo) & (vel < 0) | (rel > hi) & (vel > 0), -vel, vel)
    return boxes, cams, sizes


def _detections(gt_rows, n_frames, h, w, noise: DetNoise, rng) -> list[tuple]:
    """Noisy detections from gt rows (frame, id, x0, y0, w, h, vis; 0-based)."""
    dets = []
    for frame, _tid, x, y, bw, bh, vis in gt_rows:
        if vis < noise.min_visibility or rng.random() < noise.drop_rate:
            continue
        x0 = x + rng.normal(0, noise.jitter * bw)
        y0 = y + rng.normal(0, noise.jitter * bh)
        x1 = x + bw + rng.normal(0, noise.jitter * bw)
        y1 = y + bh + rng.normal(0, noise.jitter * bh)
        lo = noise.low_score if rng.random() < noise.low_score_rate else noise.high_score
        dets.append((frame, x0, y0, x1, y1, float(rng.uniform(*lo))))
    for frame in range(1, n_frames + 1):
        for _ in range(int(rng.poisson(noise.fp_per_frame))):
            bw, bh = rng.uniform(0.08, 0.3, size=2) * min(h, w)
            x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            dets.append((frame, x0, y0, x0 + bw, y0 + bh, float(rng.uniform(*noise.fp_score))))
    out = []
    for frame, x0, y0, x1, y1, score in sorted(dets, key=lambda d: (d[0], d[1], d[2])):
        x0, x1 = np.clip([x0, x1], 0, w)
        y0, y1 = np.clip([y0, y1], 0, h)
        if x1 - x0 >= 1 and y1 - y0 >= 1:
            out.append((frame, x0 + 1, y0 + 1, x1 - x0, y1 - y0, score))
    return out


def _write_seqinfo(path: Path, name: str, fps: int, n: int, w: int, h: int) -> None:
    path.write_text(
        "[Sequence]\n"
        f"name={name}\nimDir=img1\nframeRate={fps}\nseqLength={n}\n"
        f"imWidth={w}\nimHeight={h}\nimExt=.jpg\n"
    )


def _make_sequence(seq_dir: Path, name: str, seed: int, index: int, n_frames, n_objects,
                   h, w, camera_pan, noise: DetNoise, cfg: MotSynthConfig) -> dict:
    rng = np.random.default_rng([seed, 3, index])
    boxes, cams, sizes = _simulate(n_objects, n_frames, h, w, cfg, camera_pan, rng)
    span = np.abs(cams).max(axis=0) if n_frames else np.zeros(2, dtype=np.int64)
    pad_x, pad_y = int(span[0]) + 1, int(span[1]) + 1
    world = background(rng, h + 2 * pad_y, w + 2 * pad_x)
    textures = [fill_texture(rng, int(s[1]), int(s[0])) for s in sizes]
    ids = np.arange(1, n_objects + 1)
    for sub in ("img1", "gt", "det"):
        (seq_dir / sub).mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(seq_dir / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                             cfg.frame_rate, (w, h))
    gt_rows = []
    try:
        for t in range(n_frames):
            cx, cy = int(cams[t, 0]) + pad_x, int(cams[t, 1]) + pad_y
            img = world[cy:cy + h, cx:cx + w].copy()
            b = boxes[t]
            vis = visibilities(b, ids, h, w)
            for i in render_order(b, ids):
                x, y, bw, bh = (int(v) for v in b[i])
                xs, ys = max(x, 0), max(y, 0)
                xe, ye = min(x + bw, w), min(y + bh, h)
                if xe > xs and ye > ys:
                    img[ys:ye, xs:xe] = textures[i][ys - y:ye - y, xs - x:xe - x]
            for i in range(n_objects):
                x, y, bw, bh = (int(v) for v in b[i])
                if x < w and y < h and x + bw > 0 and y + bh > 0:
                    gt_rows.append((t + 1, int(ids[i]), x, y, bw, bh, float(vis[i])))
            bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
            ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
            if not ok:
                raise OSError(f"could not encode frame {t + 1} of {seq_dir}")
            (seq_dir / "img1" / f"{t + 1:06d}.jpg").write_bytes(buf.tobytes())
            writer.write(bgr)
    finally:
        writer.release()
    _write_seqinfo(seq_dir / "seqinfo.ini", name, cfg.frame_rate, n_frames, w, h)
    (seq_dir / "gt" / "gt.txt").write_text("".join(
        f"{f},{i},{x + 1},{y + 1},{bw},{bh},1,1,{v:.6f}\n" for f, i, x, y, bw, bh, v in gt_rows))
    dets = _detections(gt_rows, n_frames, h, w, noise, rng)
    (seq_dir / "det" / "det.txt").write_text("".join(
        f"{f},-1,{x:.2f},{y:.2f},{bw:.2f},{bh:.2f},{s:.4f},-1,-1,-1\n"
        for f, x, y, bw, bh, s in dets))
    return {"name": name, "dir": str(seq_dir), "gt": str(seq_dir / "gt" / "gt.txt"),
            "det": str(seq_dir / "det" / "det.txt"), "video": str(seq_dir / f"{name}.mp4"),
            "seqinfo": str(seq_dir / "seqinfo.ini"), "n_frames": n_frames,
            "n_gt_rows": len(gt_rows), "n_det_rows": len(dets),
            "camera": cams.tolist()}


def make_mot(
    out_dir: str | Path,
    n_videos: int,
    seed: int,
    n_frames: int = 40,
    n_objects: int = 5,
    image_size: tuple[int, int] = (128, 128),
    camera_pan: bool = False,
    det_noise: DetNoise | None = None,
    *,
    config: MotSynthConfig | None = None,
) -> dict:
    """Write ``n_videos`` MOTChallenge sequences ``<out_dir>/mot/SYN-XX``.

    Returns ``{"root", "sequences": [per-sequence dict with paths and counts]}``; the same
    arguments give byte-identical images, gt.txt and det.txt.
    """
    if n_videos < 1 or n_frames < 1 or n_objects < 1:
        raise ValueError(f"need n_videos, n_frames, n_objects >= 1; got {n_videos}, "
                         f"{n_frames}, {n_objects}")
    cfg = config or MotSynthConfig()
    noise = det_noise or DetNoise()
    h, w = int(image_size[0]), int(image_size[1])
    root = Path(out_dir) / "mot"
    seqs = []
    for v in range(n_videos):
        name = f"SYN-{v + 1:02d}"
        seqs.append(_make_sequence(root / name, name, seed, v, n_frames, n_objects, h, w,
                                   camera_pan, noise, cfg))
    return {"root": str(root), "sequences": seqs}
