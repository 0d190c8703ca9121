"""Drawing helpers shared by the synthetic COCO and MOT generators.

Everything here is deterministic given a ``numpy.random.Generator``; nothing keeps state.

The ground truth of the generators is *defined* by the masks these helpers return: a shape's mask is
the pycocotools rasterisation of its (image-clipped) polygon, so a polygon annotation decodes to
exactly the pixels that were painted, and RLE / area / bbox are computed from the same array.
"""
from __future__ import annotations

import math

import numpy as np
from pycocotools import mask as mask_utils

__all__ = [
    "SHAPE_NAMES",
    "background",
    "clip_polygon",
    "encode_rle",
    "fill_texture",
    "paint",
    "polygon_mask",
    "shape_polygons",
    "uncompressed_rle",
]

#: Shape classes of the synthetic COCO set, in category-id order (ids start at 1).
SHAPE_NAMES: tuple[str, ...] = ("circle", "ellipse", "rectangle", "triangle", "star", "ring")

_CIRCLE_VERTICES = 32


def _regular(cx: float, cy: float, rx: float, ry: float, n: int, rot: float) -> np.ndarray:
    t = rot + np.arange(n) * (2.0 * math.pi / n)
    ct, st = math.cos(rot), math.sin(rot)
    x, y = rx * np.cos(t - rot), ry * np.sin(t - rot)
    return np.stack([cx + x * ct - y * st, cy + x * st + y * ct], axis=1)


def shape_polygons(
    kind: str, cx: float, cy: float, size: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Outer polygon (N x 2, float x/y) of a shape of ``kind``, and a hole polygon or None.

    ``size`` is the shape's radius-like extent in pixels; the rotation and aspect are drawn from
    ``rng``. Only ``ring`` has a hole.
    """
    rot = float(rng.uniform(0.0, 2.0 * math.pi))
    if kind == "circle":
        return _regular(cx, cy, size, size, _CIRCLE_VERTICES, rot), None
    if kind == "ellipse":
        aspect = float(rng.uniform(0.35, 0.7))
        return _regular(cx, cy, size, size * aspect, _CIRCLE_VERTICES, rot), None
    if kind == "rectangle":
        aspect = float(rng.uniform(0.4, 1.0))
        half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
        half *= [size, size * aspect]
        c, s = math.cos(rot), math.sin(rot)
        pts = half @ np.array([[c, s], [-s, c]])
        return pts + [cx, cy], None
    if kind == "triangle":
        return _regular(cx, cy, size, size, 3, rot), None
    if kind == "star":
        outer = _regular(cx, cy, size, size, 5, rot)
        inner = _regular(cx, cy, size * 0.45, size * 0.45, 5, rot + math.pi / 5)
        return np.stack([outer, inner], axis=1).reshape(-1, 2), None
    if kind == "ring":
        return (_regular(cx, cy, size, size, _CIRCLE_VERTICES, rot),
                _regular(cx, cy, size * 0.5, size * 0.5, _CIRCLE_VERTICES, rot))
    raise ValueError(f"unknown synthetic shape kind {kind!r}; expected one of {SHAPE_NAMES}")


def clip_polygon(poly: np.ndarray, width: int, height: int) -> np.ndarray:
    """Sutherland-Hodgman clip of ``poly`` to the image rectangle [0, width] x [0, height].

    The clip region is convex, so the result is correct for any simple subject polygon; it may
    come back with fewer than 3 vertices when the shape lies outside the image.
    """
    pts = [tuple(p) for p in np.asarray(poly, dtype=np.float64)]
    # (axis, bound, keep_if_less): the four half-planes of the image rectangle
    for axis, bound, keep_less in ((0, 0.0, False), (0, float(width), True),
                                   (1, 0.0, False), (1, float(height), True)):
        if not pts:
            break
        out: list[tuple[float, float]] = []
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            cur_in = cur[axis] <= bound if keep_less else cur[axis] >= bound
            prev_in = prev[axis] <= bound if keep_less else prev[axis] >= bound
            if cur_in != prev_in:
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                cross = (prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1]))
                out.append(cross)
            if cur_in:
                out.append(cur)
        pts = out
    return np.asarray(pts, dtype=np.float64).reshape(-1, 2)


def polygon_mask(flat_polys: list[list[float]], height: int, width: int) -> np.ndarray:
    """Boolean HxW mask of COCO polygons exactly as pycocotools decodes them."""
    rles = mask_utils.frPyObjects(flat_polys, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def encode_rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a boolean mask with ``counts`` as a str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def uncompressed_rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE (column-major run lengths starting with zeros), as used for crowds."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def _smooth_field(rng: np.random.Generator, height: int, width: int,
                  cells: tuple[int, int]) -> np.ndarray:
    """HxWx1 float field in [0, 1]: a random (rows, cols) grid, cubic-upsampled."""
    import cv2  # local: keep module import light for workers that only need masks

    coarse = rng.uniform(0, 1, size=cells).astype(np.float32)
    t = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(t, 0, 1)[..., None]


def background(rng: np.random.Generator, height: int, width: int, *,
               scene_field: bool = False) -> np.ndarray:
    """A textured RGB background: smooth noise, a two-colour gradient, or stripes (uint8 HxWx3).

    ``scene_field`` adds a low-frequency luminance field unique to the scene: perceptual hashes
    see only low frequencies, and without it two gradient/stripe scenes of different splits can
    hash alike (a false leak on clean data). The MOT sequences keep the plain backgrounds.
    """
    kind = int(rng.integers(3))
    c0, c1 = rng.uniform(30, 225, size=(2, 3))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 0:  # smooth value noise: upsampled coarse random grid
        t = _smooth_field(rng, height, width, cells=(max(2, height // 16), max(2, width // 16)))
    elif kind == 1:  # linear gradient in a random direction
        ang = rng.uniform(0, 2 * math.pi)
        d = xx * math.cos(ang) + yy * math.sin(ang)
        t = ((d - d.min()) / max(float(np.ptp(d)), 1.0))[..., None]
    else:  # sinusoidal stripes with a random period and angle
        ang = rng.uniform(0, math.pi)
        period = rng.uniform(6, 24)
        d = xx * math.cos(ang) + yy * math.sin(ang)
        t = (0.5 + 0.5 * np.sin(2 * math.pi * d / period))[..., None]
    img = c0 * (1 - t) + c1 * t
    if scene_field:
        img += _smooth_field(rng, height, width, cells=(4, 4)) * 70.0 - 35.0
    img += rng.normal(0, 6, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def fill_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An object's fill: a random base colour with per-pixel noise and an optional stripe pattern."""
    base = rng.uniform(0, 255, size=3)
    tex = np.broadcast_to(base, (height, width, 3)).astype(np.float32).copy()
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:height, 0:width]
        other = rng.uniform(0, 255, size=3)
        period = int(rng.integers(3, 8))
        stripe = (((xx + yy) // period) % 2).astype(bool)
        tex[stripe] = other
    tex += rng.normal(0, 10, size=tex.shape)
    return np.clip(tex, 0, 255).astype(np.uint8)


def paint(image: np.ndarray, mask: np.ndarray, texture: np.ndarray) -> None:
    """Overwrite ``image`` with ``texture`` wherever ``mask`` is set (in place, hard edges)."""
    image[mask] = texture[mask]
