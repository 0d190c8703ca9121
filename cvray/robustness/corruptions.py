"""Image corruptions with the COCO-C / ImageNet-C semantics (Michaelis et al. 2019, arXiv 1907.07484).

The per-severity parameters are those of the ``imagecorruptions`` 1.1.2 package (the COCO-C
reference); the code is our own vectorised numpy / scipy.ndimage / OpenCV / PIL, because the
package does not import on today's stack (see :mod:`cvray.robustness.reference`, the test-only
shim). Every random draw comes from the ``numpy.random.Generator`` passed to :func:`corrupt`
-- never the global numpy or ``random`` state -- so a retried cell reproduces its pixels bit for
bit; :func:`corruption_rng` derives that generator from (seed, image id, corruption, severity).

Input: uint8 HxW, HxWx1 or HxWx3 of any size (grey is stacked to RGB, as the reference does).
Output: uint8 HxWx3, same H and W; floats are truncated to uint8 like the reference's
``np.uint8(...)`` (not rounded).

Sets: :data:`BENCHMARK` (the 15 COCO-C corruptions), :data:`HOLDOUT` (the 4 validation ones) and
:data:`EXTRAS` (low_light, rain, lens_smudge: ours, not in the benchmark).
"""
from __future__ import annotations

import functools
import importlib.util
import io
import math
import os
import zlib
from typing import Callable

import cv2
import numpy as np
from scipy import ndimage as ndi

BENCHMARK: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression")
HOLDOUT: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
EXTRAS: tuple[str, ...] = ("low_light", "rain", "lens_smudge")
FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": BENCHMARK[0:3],
    "blur": BENCHMARK[3:7],
    "weather": BENCHMARK[7:11],
    "digital": BENCHMARK[11:15],
    "holdout": HOLDOUT,
    "extra": EXTRAS,
}
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
_GROUPS: dict[str, tuple[str, ...]] = {
    "benchmark": BENCHMARK, "holdout": HOLDOUT, "all": BENCHMARK + HOLDOUT, "extras": EXTRAS}
_ALL_NAMES: tuple[str, ...] = BENCHMARK + HOLDOUT + EXTRAS


# ----------------------------------------------------------------------------- public helpers

def resolve_corruptions(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """Expand ``"benchmark" | "holdout" | "all" | "extras"`` or comma-separated names (or a list of
    them) into an ordered, de-duplicated list of corruption names.

    ``"all"`` is benchmark + holdout (the 19 reference corruptions). Unknown names raise
    ValueError naming them and listing the valid ones.
    """
    tokens = spec.split(",") if isinstance(spec, str) else [t for s in spec for t in str(s).split(",")]
    tokens = [t.strip() for t in tokens if t.strip()]
    if not tokens:
        raise ValueError(f"no corruption given; valid: {_valid_text()}")
    unknown = [t for t in tokens if t not in _GROUPS and t not in _ALL_NAMES]
    if unknown:
        raise ValueError(f"unknown corruption(s) {', '.join(map(repr, unknown))}; valid: {_valid_text()}")
    out: list[str] = []
    for t in tokens:
        for name in _GROUPS.get(t, (t,)):
            if name not in out:
                out.append(name)
    return out


def _valid_text() -> str:
    return f"groups {', '.join(_GROUPS)}; names {', '.join(_ALL_NAMES)}"


def family(name: str) -> str:
    """The reporting family of ``name``: noise / blur / weather / digital / holdout / extra."""
    for fam, names in FAMILIES.items():
        if name in names:
            return fam
    raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(_ALL_NAMES)}")


def corruption_rng(seed: int, image_id: int, name: str, severity: int) -> np.random.Generator:
    """A Generator for one (seed, image id, corruption, severity) cell, from ``np.random.SeedSequence``.

    The name enters as ``zlib.crc32`` of its UTF-8 bytes (stable across processes, unlike
    ``hash()``). seed and image_id must be non-negative integers.
    """
    for label, v in (("seed", seed), ("image_id", image_id), ("severity", severity)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{label} must be a non-negative integer, got {v!r}")
    entropy = [int(seed), int(image_id), zlib.crc32(name.encode("utf-8")), int(severity)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def corrupt(image: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` (1..5) to a uint8 image, drawing only from ``rng``."""
    if name not in _FUNCS:
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(_ALL_NAMES)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    rgb = _as_rgb(image)
    out = _FUNCS[name](rgb, int(severity), rng)
    assert out.dtype == np.uint8 and out.shape == rgb.shape, (name, out.dtype, out.shape)
    return out


def _as_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {img.dtype}")
    if img.ndim == 2:
        img = np.stack((img,) * 3, axis=-1)
    elif img.ndim == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected an HxW, HxWx1 or HxWx3 image, got shape {img.shape}")
    return np.ascontiguousarray(img)


def _to_uint8(x: np.ndarray, scale: float = 255.0) -> np.ndarray:
    """clip(x, 0, 1) * scale truncated to uint8, as the reference's ``np.uint8(np.clip(...) * 255)``."""
    return (np.clip(x, 0, 1) * scale).astype(np.uint8)


# ----------------------------------------------------------------------------- shared helpers

def _gaussian(x: np.ndarray, sigma: float | tuple[float, ...], mode: str = "nearest",
              truncate: float = 4.0) -> np.ndarray:
    """``skimage.filters.gaussian`` semantics (it is a wrapper around ndi.gaussian_filter)."""
    return ndi.gaussian_filter(x, sigma, mode=mode, truncate=truncate)


def _gaussian_rgb(x: np.ndarray, sigma: float) -> np.ndarray:
    """``gaussian(x, sigma, multichannel=True)``: no smoothing across the channel axis."""
    return _gaussian(x, (sigma, sigma, 0))


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's anti-aliased disk kernel (float32), used by defocus blur."""
    if radius <= 8:
        grid, ksize = np.arange(-8, 9), (3, 3)
    else:
        grid, ksize = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    disk /= np.sum(disk)
    return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)


def _zoom_axis(x: np.ndarray, out_len: int, axis: int) -> np.ndarray:
    """Linear resampling along ``axis`` as scipy.ndimage.zoom(order=1) does it: output index k
    reads input coordinate ``k * (n - 1) / (out - 1)`` (corners aligned), and -- scipy's
    ``mode='constant'`` quirk, kept for equality -- a coordinate that rounding puts past ``n - 1``
    reads cval 0 (e.g. the last column of some zoom-blur layers is black in the reference)."""
    n = x.shape[axis]
    if out_len == n:
        return x
    zoom = np.divide(n - 1, out_len - 1) if out_len > 1 else 1.0
    pos = np.arange(out_len, dtype=np.float64) * zoom
    i0 = np.minimum(np.floor(pos).astype(np.intp), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    shape = [1] * x.ndim
    shape[axis] = out_len
    w = (pos - i0).astype(x.dtype).reshape(shape)
    out = np.take(x, i0, axis=axis)
    diff = np.take(x, i1, axis=axis)
    diff -= out
    diff *= w
    out += diff
    outside = (pos > n - 1).reshape(shape)
    return np.where(outside, np.zeros((), x.dtype), out) if outside.any() else out


def _clipped_zoom(x: np.ndarray, zoom_factor: float) -> np.ndarray:
    """The reference's ``clipped_zoom``: centre crop of 1/zoom, bilinear zoom back (not trimmed).

    Output size is ``round(crop * zoom)`` per axis, like scipy.ndimage.zoom(order=1).
    """
    h, w = x.shape[:2]
    ch0, ch1 = int(np.ceil(h / float(zoom_factor))), int(np.ceil(w / float(zoom_factor)))
    top0, top1 = (h - ch0) // 2, (w - ch1) // 2
    crop = x[top0:top0 + ch0, top1:top1 + ch1]
    out = _zoom_axis(crop, int(round(ch0 * zoom_factor)), 0)
    return _zoom_axis(out, int(round(ch1 * zoom_factor)), 1)


def _motion_offsets(radius: int, angle: float, shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """The (dy, dx) shifts of the reference's ``_motion_blur`` (stops where they leave the image)."""
    width = radius * 2 + 1
    point = (width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle)))
    hypot = math.hypot(point[0], point[1])
    offsets = []
    for i in range(width):
        dy = -math.ceil(((i * point[0]) / hypot) - 0.5)
        dx = -math.ceil(((i * point[1]) / hypot) - 0.5)
        if abs(dy) >= shape[0] or abs(dx) >= shape[1]:
            break
        offsets.append((dy, dx))
    return offsets


def _motion_blur_array(x: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """The reference's shift-and-add motion blur: ``sum_i k_i x[y - dy_i, x - dx_i]`` with edge
    replication and a half-Gaussian kernel ``k`` of width ``2 radius + 1``.

    One edge-padded copy and slices instead of the reference's roll + fill per shift; the sum is
    accumulated in float64 in the reference's order.
    """
    width = radius * 2 + 1
    kernel = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    kernel = kernel / np.sum(kernel)
    offsets = _motion_offsets(radius, angle, x.shape)
    h, w = x.shape[:2]
    pad = max([0] + [max(abs(dy), abs(dx)) for dy, dx in offsets])
    widths = [(pad, pad), (pad, pad)] + [(0, 0)] * (x.ndim - 2)
    padded = np.pad(x, widths, mode="edge")
    out = np.zeros(x.shape, dtype=np.float64)
    term = np.empty(x.shape, dtype=np.float64)
    for k, (dy, dx) in zip(kernel, offsets):
        np.multiply(padded[pad - dy:pad - dy + h, pad - dx:pad - dx + w], k, out=term)
        out += term
    return out


def _rgb2gray(rgb: np.ndarray) -> np.ndarray:
    return np.dot(rgb[..., :3], [0.2989, 0.5870, 0.1140])


# ----------------------------------------------------------------------------- noise

def gaussian_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise, std c in [0,1] units: c = .08, .12, .18, .26, .38."""
    c = [.08, .12, 0.18, 0.26, 0.38][severity - 1]
    return _to_uint8(x / 255. + rng.normal(size=x.shape, scale=c))


def shot_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson (shot) noise: poisson(x * c) / c with c photons at white = 60, 25, 12, 5, 3."""
    c = [60, 25, 12, 5, 3][severity - 1]
    return _to_uint8(rng.poisson(x / 255. * c) / float(c))


def impulse_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt & pepper per value (skimage ``random_noise(mode='s&p')``): a fraction c = .03, .06,
    .09, .17, .27 of the values is set to 0 or 1 with equal odds."""
    c = [.03, .06, .09, 0.17, 0.27][severity - 1]
    flipped = rng.random(x.shape) <= c
    salted = rng.random(x.shape) <= 0.5
    out = x.copy()
    out[flipped & salted] = 255
    out[flipped & ~salted] = 0
    return out


def speckle_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative Gaussian noise x + x * n, n ~ N(0, c), c = .15, .2, .35, .45, .6."""
    c = [.15, .2, 0.35, 0.45, 0.6][severity - 1]
    xf = x / 255.
    return _to_uint8(xf + xf * rng.normal(size=x.shape, scale=c))


# ----------------------------------------------------------------------------- blur

def defocus_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Convolution with an anti-aliased disk, (radius, alias_blur) = (3, .1), (4, .5), (6, .5),
    (8, .5), (10, .5). Deterministic."""
    radius, alias = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)][severity - 1]
    kernel = _disk(radius, alias)
    xf = x / 255.
    out = np.stack([cv2.filter2D(xf[:, :, d], -1, kernel) for d in range(3)], axis=2)
    return _to_uint8(out)


def gaussian_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur per channel, sigma = 1, 2, 3, 4, 6 (mode 'nearest', truncate 4). Deterministic."""
    c = [1, 2, 3, 4, 6][severity - 1]
    return _to_uint8(_gaussian_rgb(x / 255., c))


def _glass_sources(h: int, w: int, max_delta: int, offsets: np.ndarray) -> np.ndarray:
    """Flat source index of every pixel after one pass of the reference's pixel "swap" loop.

    The reference visits (r, c) for r = h-d .. d+1 and c = w-d .. d+1 (both descending) and runs
    ``x[r, c], x[r', c'] = x[r', c'], x[r, c]`` with (r', c') = (r + dy, c + dx). On numpy rows
    that tuple swap is really a *copy* ``x[r, c] = x[r', c']`` (the second assignment writes back
    the value just copied), so a visited pixel takes the current value of its partner: the
    partner's final value if the partner was visited before (raster-later and inside the visited
    block), else its value at the start of the pass. That is a forest of pointers that pointer
    jumping resolves in O(log chain) vectorised steps -- the exact result of the sequential loop.

    ``offsets``: int array (n_rows, n_cols, 2) of (dx, dy) in the loop's visiting order.
    """
    d = max_delta
    src = np.arange(h * w, dtype=np.int32)
    if h - 2 * d <= 0 or w - 2 * d <= 0:
        return src
    # the visited block (rows/cols d+1 .. h-d / w-d) in ascending order; offsets are in visit order
    off = offsets[::-1, ::-1]
    dx, dy = off[..., 0].astype(np.int32), off[..., 1].astype(np.int32)
    rows = np.arange(d + 1, h - d + 1, dtype=np.int32)[:, None]
    cols = np.arange(d + 1, w - d + 1, dtype=np.int32)[None, :]
    p = rows * w + cols
    q = p + dy * w + dx
    r2, c2 = rows + dy, cols + dx
    partner_visited = (r2 >= d + 1) & (r2 <= h - d) & (c2 >= d + 1) & (c2 <= w - d)
    chained = partner_visited & ((dy > 0) | ((dy == 0) & (dx > 0)))  # raster-later = visited before
    block = (slice(d + 1, h - d + 1), slice(d + 1, w - d + 1))
    nxt = np.arange(h * w, dtype=np.int32)
    nxt.reshape(h, w)[block] = np.where(chained, q, p)   # chained: copy the partner's final value
    src.reshape(h, w)[block] = np.where(chained, p, q)   # else: the partner's value at pass start
    active = p[chained]
    while active.size:                    # pointer jumping on the unresolved nodes only
        target = nxt[active]
        jumped = nxt[target]
        nxt[active] = jumped
        active = active[jumped != target]
    return src[nxt]


def _glass_offsets(h: int, w: int, max_delta: int, rng: np.random.Generator) -> np.ndarray:
    """One pass's (dx, dy) draws, each uniform in [-max_delta, max_delta) like ``randint``."""
    n_rows, n_cols = max(h - 2 * max_delta, 0), max(w - 2 * max_delta, 0)
    return rng.integers(-max_delta, max_delta, size=(n_rows, n_cols, 2), dtype=np.int8)


def glass_blur_with_offsets(x: np.ndarray, severity: int, offsets: list[np.ndarray]) -> np.ndarray:
    """Glass blur given each pass's offsets (see :func:`_glass_sources`); used to check exactness."""
    sigma, max_delta, _ = _GLASS[severity - 1]
    h, w = x.shape[:2]
    blurred = (_gaussian_rgb(x / 255., sigma) * 255).astype(np.uint8)
    flat = blurred.reshape(h * w, 3)
    for off in offsets:
        flat = flat[_glass_sources(h, w, max_delta, off)]
    return _to_uint8(_gaussian_rgb(flat.reshape(h, w, 3) / 255., sigma))


_GLASS = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)]


def glass_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur, local pixel shuffling, Gaussian blur again; (sigma, max_delta, passes) =
    (.7, 1, 2), (.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2).

    The shuffling is the reference's sequential loop computed exactly with array operations
    (:func:`_glass_sources`); only the random stream differs (our Generator).
    """
    _, max_delta, passes = _GLASS[severity - 1]
    h, w = x.shape[:2]
    offsets = [_glass_offsets(h, w, max_delta, rng) for _ in range(passes)]
    return glass_blur_with_offsets(x, severity, offsets)


def motion_blur_at_angle(x: np.ndarray, severity: int, angle: float) -> np.ndarray:
    """Motion blur along ``angle`` degrees, (radius, sigma) = (10, 3), (15, 5), (15, 8), (15, 12),
    (20, 15) -- the reference's shift-and-add kernel (no Wand/ImageMagick)."""
    radius, sigma = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][severity - 1]
    return np.clip(_motion_blur_array(x, radius, sigma, angle), 0, 255).astype(np.uint8)


def motion_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Motion blur at an angle drawn uniformly in [-45, 45) degrees (see motion_blur_at_angle)."""
    return motion_blur_at_angle(x, severity, float(rng.uniform(-45, 45)))


def zoom_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Average of the image and its centre zooms by factors 1..1.11 step .01, 1..1.16 step .01,
    1..1.21 step .02, 1..1.26 step .02, 1..1.31 step .03. Deterministic."""
    factors = [np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01), np.arange(1, 1.21, 0.02),
               np.arange(1, 1.26, 0.02), np.arange(1, 1.31, 0.03)][severity - 1]
    xf = (x / 255.).astype(np.float32)
    h, w = xf.shape[:2]
    out = np.zeros_like(xf)
    for z in factors:
        layer = _clipped_zoom(xf, z)[:h, :w]
        out[:layer.shape[0], :layer.shape[1]] += layer
    return _to_uint8((xf + out) / (len(factors) + 1))


# ----------------------------------------------------------------------------- weather

_SNOW = [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
         (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
         (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)]


def snow(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Snow: a thresholded, zoomed Gaussian noise layer streaked by motion blur at [-135, -45)
    degrees, added twice (and rotated 180 degrees) to the image brightened towards 1.5 grey + .5.
    Parameters (loc, scale, zoom, threshold, blur radius, blur sigma, image weight) per severity:
    (.1,.3,3,.5,10,4,.8), (.2,.3,2,.5,12,4,.7), (.55,.3,4,.9,12,8,.7), (.55,.3,4.5,.85,12,8,.65),
    (.55,.3,2.5,.85,12,12,.55)."""
    loc, scale, zoom, thresh, radius, sigma, keep = _SNOW[severity - 1]
    xf = np.array(x, dtype=np.float32) / 255.
    h, w = xf.shape[:2]
    layer = rng.normal(size=(h, w), loc=loc, scale=scale)
    layer = _clipped_zoom(layer, zoom)
    layer[layer < thresh] = 0
    layer = np.clip(layer, 0, 1)
    layer = _motion_blur_array(layer, radius, sigma, float(rng.uniform(-135, -45)))
    layer = (np.round(layer * 255).astype(np.uint8) / 255.)[:h, :w, np.newaxis]
    gray = cv2.cvtColor(xf, cv2.COLOR_RGB2GRAY).reshape(h, w, 1) * 1.5 + 0.5
    xf = keep * xf + (1 - keep) * np.maximum(xf, gray)
    out = xf.copy()
    out[:layer.shape[0], :layer.shape[1]] += layer + np.rot90(layer, k=2)
    return _to_uint8(out)


_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")


def frost_dir() -> str:
    """Directory of the frost textures shipped by ``imagecorruptions`` (found without importing it)."""
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("frost needs the texture images of the 'imagecorruptions' package "
                           "(pip install imagecorruptions); it is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "frost")
    if not os.path.isdir(path):
        raise RuntimeError(f"imagecorruptions is installed but has no frost textures at {path}")
    return path


@functools.lru_cache(maxsize=8)
def _frost_texture(idx: int) -> np.ndarray:
    path = os.path.join(frost_dir(), _FROST_FILES[idx])
    img = cv2.imread(path)
    if img is None:
        raise RuntimeError(f"cannot read frost texture {path}")
    img.setflags(write=False)
    return img


@functools.lru_cache(maxsize=32)
def _frost_rescaled(idx: int, h: int, w: int) -> np.ndarray:
    """The texture scaled (x1.1 margin, bicubic) so that it covers an h x w image, as the reference."""
    frost = _frost_texture(idx)
    fh, fw = frost.shape[:2]
    scale = max(1.0, h / fh, w / fw) * 1.1
    size = (int(np.ceil(fw * scale)), int(np.ceil(fh * scale)))
    out = cv2.resize(frost, dsize=size, interpolation=cv2.INTER_CUBIC)
    out.setflags(write=False)
    return out


def frost_at(x: np.ndarray, severity: int, idx: int, top: int, left: int) -> np.ndarray:
    """Frost with texture ``idx`` (0..4) cropped at (top, left): c0 x + c1 frost, (c0, c1) = (1, .4),
    (.8, .6), (.7, .7), (.65, .7), (.6, .75)."""
    c0, c1 = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)][severity - 1]
    h, w = x.shape[:2]
    layer = _frost_rescaled(idx, h, w)[top:top + h, left:left + w][..., [2, 1, 0]]
    return np.clip(c0 * x + c1 * layer, 0, 255).astype(np.uint8)


def frost(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Frost: one of the first five textures (the reference draws ``randint(5)``, so frost6 is never
    used), a uniform random crop, blended with the image (see frost_at)."""
    idx = int(rng.integers(5))
    h, w = x.shape[:2]
    fr = _frost_rescaled(idx, h, w)
    top = int(rng.integers(0, max(fr.shape[0] - h, 1)))
    left = int(rng.integers(0, max(fr.shape[1] - w, 1)))
    return frost_at(x, severity, idx, top, left)


def _plasma_fractal(mapsize: int, wibbledecay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square height map in [0, 1] (the reference's ``plasma_fractal``), draws from rng."""
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize, wibble = mapsize, 100.0
    while stepsize >= 2:
        half = stepsize // 2
        corners = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        square = corners + np.roll(corners, shift=-1, axis=0)
        square += np.roll(square, shift=-1, axis=1)
        maparray[half:mapsize:stepsize, half:mapsize:stepsize] = \
            square / 4 + wibble * rng.uniform(-wibble, wibble, square.shape)
        dr = maparray[half:mapsize:stepsize, half:mapsize:stepsize]
        ul = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        lt = dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1)
        maparray[0:mapsize:stepsize, half:mapsize:stepsize] = \
            lt / 4 + wibble * rng.uniform(-wibble, wibble, lt.shape)
        tt = dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0)
        maparray[half:mapsize:stepsize, 0:mapsize:stepsize] = \
            tt / 4 + wibble * rng.uniform(-wibble, wibble, tt.shape)
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


def fog(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Fog: adds c0 x a plasma fractal (decay c1) and renormalises by max / (max + c0);
    (c0, c1) = (1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)."""
    c0, c1 = [(1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4)][severity - 1]
    h, w = x.shape[:2]
    mapsize = 1 << (max(h, w, 3) - 1).bit_length()
    xf = x / 255.
    max_val = xf.max()
    xf = xf + c0 * _plasma_fractal(mapsize, c1, rng)[:h, :w][..., np.newaxis]
    return _to_uint8(xf * max_val / (max_val + c0))


def _hsv_value_scale(xf: np.ndarray, new_v: np.ndarray, v: np.ndarray) -> np.ndarray:
    """RGB with HSV value v replaced by new_v, hue and saturation kept (v = 0 gives grey new_v)."""
    ratio = np.divide(new_v, v, out=np.zeros_like(v), where=v > 0)
    out = xf * ratio[..., None]
    black = v == 0
    out[black] = new_v[black][:, None]
    return out


def brightness(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """HSV value + c (clipped), c = .1, .2, .3, .4, .5. Deterministic.

    Closed form of skimage's rgb2hsv -> V + c -> hsv2rgb: with H and S kept every channel scales
    by V'/V (black pixels become grey V').
    """
    c = [.1, .2, .3, .4, .5][severity - 1]
    xf = x / 255.
    v = xf.max(axis=2)
    return _to_uint8(_hsv_value_scale(xf, np.clip(v + c, 0, 1), v))


def saturate(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """HSV saturation s -> clip(s * a + b), (a, b) = (.3, 0), (.1, 0), (2, 0), (5, .1), (20, .2).
    Deterministic; severities 1-2 desaturate, 3-5 oversaturate (not monotone in PSNR).

    Closed form of skimage's rgb2hsv -> hsv2rgb round trip: with H and V kept, every channel is
    V - (V - c) s'/s; grey pixels (s = 0, hue 0 = red in skimage) become (V, V(1-s'), V(1-s')).
    """
    a, b = [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)][severity - 1]
    xf = x / 255.
    v = xf.max(axis=2)
    delta = v - xf.min(axis=2)
    s = np.divide(delta, v, out=np.zeros_like(v), where=v > 0)
    s[delta == 0] = 0
    s_new = np.clip(s * a + b, 0, 1)
    ratio = np.divide(s_new, s, out=np.zeros_like(s), where=s > 0)
    out = v[..., None] - (v[..., None] - xf) * ratio[..., None]
    grey = s == 0
    vg, sg = v[grey], s_new[grey]
    out[grey] = np.stack([vg, vg * (1 - sg), vg * (1 - sg)], axis=1)
    return _to_uint8(out)


# ----------------------------------------------------------------------------- digital

def contrast(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Contrast towards each channel's mean: (x - mean) c + mean, c = .4, .3, .2, .1, .05. Deterministic."""
    c = [0.4, .3, .2, .1, .05][severity - 1]
    xf = x / 255.
    means = np.mean(xf, axis=(0, 1), keepdims=True)
    return _to_uint8((xf - means) * c + means)


def elastic_at(x: np.ndarray, severity: int, ux: np.ndarray, uy: np.ndarray) -> np.ndarray:
    """Elastic warp from uniform fields ux, uy in [-max_d, max_d] (max_d = .005 H): each smoothed by
    a Gaussian of sigma .01 (H, W) (reflect, truncate 3), scaled by alpha = 250 x (.05, .065, .085,
    .1, .12), then bilinear resampling with reflected borders."""
    alpha = [250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12][severity - 1]
    h, w = x.shape[:2]
    sigma = np.array((h, w)) * 0.01
    dx = (_gaussian(ux, sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    dy = (_gaussian(uy, sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    coords = np.stack([yy + dy, xx + dx])
    xf = np.array(x, dtype=np.float32) / 255.
    out = np.stack([ndi.map_coordinates(xf[:, :, d], coords, order=1, mode="reflect")
                    for d in range(3)], axis=2)
    return _to_uint8(out)


def elastic_transform(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Elastic transform with displacement fields drawn from rng (see elastic_at)."""
    h = x.shape[0]
    max_d = h * 0.005
    ux = rng.uniform(-max_d, max_d, size=x.shape[:2])
    uy = rng.uniform(-max_d, max_d, size=x.shape[:2])
    return elastic_at(x, severity, ux, uy)


def pixelate(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """PIL box downscale by c = .6, .5, .4, .3, .25, nearest upscale back. Deterministic."""
    from PIL import Image

    c = [0.6, 0.5, 0.4, 0.3, 0.25][severity - 1]
    h, w = x.shape[:2]
    img = Image.fromarray(x).resize((max(int(w * c), 1), max(int(h * c), 1)), Image.BOX)
    return np.asarray(img.resize((w, h), Image.NEAREST), dtype=np.uint8).copy()


def jpeg_compression(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """PIL JPEG round trip at quality 25, 18, 15, 10, 7. Deterministic."""
    from PIL import Image

    quality = [25, 18, 15, 10, 7][severity - 1]
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.uint8).copy()


_SPATTER = [(0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
            (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)]


def spatter_from_layer(x: np.ndarray, severity: int, liquid: np.ndarray) -> np.ndarray:
    """Spatter from a N(loc, scale) layer: smoothed (sigma c2), thresholded (c3); severities 1-3
    add pale-turquoise water drops shaded by an edge distance map (strength c4), 4-5 paste mud-brown
    blobs (mask smoothed by sigma c4, kept >= .8). (loc, scale, sigma, threshold, c4, mud) =
    (.65,.3,4,.69,.6,0), (.65,.3,3,.68,.6,0), (.65,.3,2,.68,.5,0), (.65,.3,1,.65,1.5,1),
    (.67,.4,1,.65,1.5,1)."""
    _, _, sigma, thresh, strength, mud = _SPATTER[severity - 1]
    xf = np.array(x, dtype=np.float32) / 255.
    liquid = _gaussian(liquid, sigma)
    liquid[liquid < thresh] = 0
    if mud:
        return _mud(xf, liquid, thresh, strength)
    return _water(xf, liquid, strength)


def _water(xf: np.ndarray, liquid: np.ndarray, strength: float) -> np.ndarray:
    layer = (liquid * 255).astype(np.uint8)
    dist = 255 - cv2.Canny(layer, 50, 150)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
    dist = cv2.equalizeHist(dist)
    ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    dist = cv2.filter2D(dist, cv2.CV_8U, ker)
    dist = cv2.blur(dist, (3, 3)).astype(np.float32)
    m = layer * dist
    peak = np.max(m)
    m = (m / peak if peak > 0 else np.zeros_like(m))[..., None]
    m *= strength
    color = np.array([175 / 255., 238 / 255., 238 / 255.], dtype=np.float32)
    return _to_uint8(np.clip(xf + m * color, 0, 1))


def _mud(xf: np.ndarray, liquid: np.ndarray, thresh: float, strength: float) -> np.ndarray:
    m = np.where(liquid > thresh, 1, 0).astype(np.float32)
    m = _gaussian(m, strength)
    m[m < 0.8] = 0
    color = np.array([63 / 255., 42 / 255., 20 / 255.]) * m[..., np.newaxis]
    xf *= (1 - m[..., np.newaxis])
    return _to_uint8(xf + color)


def spatter(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Spatter (water / mud) with the liquid layer drawn from rng (see spatter_from_layer)."""
    loc, scale = _SPATTER[severity - 1][:2]
    liquid = rng.normal(size=x.shape[:2], loc=loc, scale=scale)
    return spatter_from_layer(x, severity, liquid)


# ----------------------------------------------------------------------------- extras (ours)

_LOW_LIGHT = [(1.3, 0.70, 160.0, 0.004), (1.6, 0.55, 80.0, 0.008), (2.0, 0.40, 40.0, 0.012),
              (2.4, 0.30, 20.0, 0.018), (2.8, 0.20, 10.0, 0.025)]


def low_light(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Low light: gamma darkening ``gain * x**gamma``, Poisson shot noise with ``photons`` at
    white, Gaussian read noise of std ``read`` (in [0,1] units). (gamma, gain, photons, read) =
    (1.3, .7, 160, .004), (1.6, .55, 80, .008), (2, .4, 40, .012), (2.4, .3, 20, .018),
    (2.8, .2, 10, .025)."""
    gamma, gain, photons, read = _LOW_LIGHT[severity - 1]
    dark = gain * (x / 255.) ** gamma
    noisy = rng.poisson(dark * photons) / photons
    noisy = noisy + rng.standard_normal(x.shape) * read
    return _to_uint8(noisy)


_RAIN = [(0.0015, 11, 0.50, 0.00), (0.0030, 15, 0.55, 0.04), (0.0045, 19, 0.60, 0.08),
         (0.0060, 23, 0.65, 0.12), (0.0080, 27, 0.70, 0.16)]


def _streak_kernel(length: int, angle: float) -> np.ndarray:
    """An anti-aliased line of ``length`` pixels, ``angle`` degrees from vertical, peak 1."""
    size = length | 1
    canvas = np.zeros((size, size), dtype=np.uint8)
    c, half = size // 2, (length - 1) / 2
    dx, dy = half * math.sin(math.radians(angle)), half * math.cos(math.radians(angle))
    p0 = (int(round(c - dx)), int(round(c - dy)))
    p1 = (int(round(c + dx)), int(round(c + dy)))
    cv2.line(canvas, p0, p1, 255, thickness=1, lineType=cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.


def rain(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Rain streaks: drops at a per-pixel ``density`` with random brightness, drawn as lines of
    ``length`` px at a common wind angle in [-20, 20) degrees from vertical (plus a small per-image
    jitter in length), blended as a pale-grey layer of opacity ``alpha`` over the image veiled by
    a grey haze of weight ``haze``. (density, length, alpha, haze) = (.0015, 11, .5, 0),
    (.003, 15, .55, .04), (.0045, 19, .6, .08), (.006, 23, .65, .12), (.008, 27, .7, .16)."""
    density, length, alpha, haze = _RAIN[severity - 1]
    h, w = x.shape[:2]
    angle = float(rng.uniform(-20, 20))
    drops = (rng.random((h, w)) < density) * rng.uniform(0.6, 1.0, size=(h, w))
    streaks = cv2.filter2D(drops.astype(np.float32), -1, _streak_kernel(length, angle),
                           borderType=cv2.BORDER_CONSTANT)
    streaks = np.clip(cv2.GaussianBlur(streaks, (3, 3), 0.6), 0, 1)[..., None] * alpha
    xf = x.astype(np.float32) / np.float32(255)
    xf = xf * (1 - haze) + haze * 0.75
    return _to_uint8(xf * (1 - streaks) + streaks * 0.85)


_SMUDGE = [(0.15, 3, 0.15), (0.25, 5, 0.25), (0.35, 7, 0.35), (0.45, 9, 0.45), (0.60, 12, 0.55)]


def _smudge_mask(h: int, w: int, coverage: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth blob mask in [0, 1] covering about ``coverage`` of the image: low-frequency noise
    plus a Gaussian bump at a random centre, thresholded at its (1 - coverage) quantile with soft
    edges."""
    field = cv2.resize(rng.random((4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
    yy, xx = np.ogrid[:h, :w]
    bump = np.exp(-(((yy - cy) / (0.45 * h)) ** 2 + ((xx - cx) / (0.45 * w)) ** 2))
    field = 0.5 * field + bump.astype(np.float32)
    t = np.quantile(field, 1 - coverage)
    soft = max(float(field.max() - t), 1e-6) * 0.35
    return np.clip((field - t) / soft, 0, 1)


def lens_smudge(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Lens smudge: a smooth random region (about ``coverage`` of the image) where the image is
    defocused (disk of ``radius``) and veiled towards light grey by ``haze`` (lower contrast).
    (coverage, radius, haze) = (.15, 3, .15), (.25, 5, .25), (.35, 7, .35), (.45, 9, .45),
    (.6, 12, .55)."""
    coverage, radius, haze = _SMUDGE[severity - 1]
    h, w = x.shape[:2]
    mask = _smudge_mask(h, w, coverage, rng)[..., None]
    xf = x.astype(np.float32) / np.float32(255)
    blurred = cv2.filter2D(xf, -1, _disk(radius, 0.5), borderType=cv2.BORDER_REFLECT)
    smear = blurred * (1 - haze) + haze * 0.8
    return _to_uint8(xf * (1 - mask) + smear * mask)


_FUNCS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    name: globals()[name] for name in _ALL_NAMES}
