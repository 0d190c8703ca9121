"""Per-image quality features and video frame timing, the covariate half of drift monitoring.

Each feature is cheap (a few passes over one luma plane), label-free and has a known response to
the corruptions of :mod:`cvray.robustness.corruptions`, so a shift of the image stream shows up in
the feature before it shows up in the model's accuracy:

* ``mean_luma``: mean of BT.601 luma ``Y = .299 R + .587 G + .114 B`` (ITU-R BT.601), 0..255;
  night / low light / over-exposure move it.
* ``rms_contrast``: standard deviation of ``Y / 255`` (Peli 1990, "Contrast in complex images");
  fog, haze and low light lower it.
* ``laplacian_var``: variance of the 4-neighbour Laplacian of ``Y`` (Pech-Pacheco et al. 2000,
  "Diatom autofocusing in brightfield microscopy"): a sharpness score, so blur / defocus lowers it
  and noise raises it.
* ``colourfulness``: Hasler & Suesstrunk 2003 ("Measuring colourfulness in natural images"):
  ``rg = R - G``, ``yb = (R + G) / 2 - B``, ``sqrt(s_rg^2 + s_yb^2) + 0.3 sqrt(m_rg^2 + m_yb^2)``.
* ``noise_sigma``: Immerkaer 1996 ("Fast noise variance estimation", CVIU 64(2)): the image
  convolved with the mask ``[[1,-2,1],[-2,4,-2],[1,-2,1]]`` (the difference of two Laplacians,
  blind to linear ramps), ``sigma = sqrt(pi/2) * sum|.| / (6 (W-2)(H-2))`` over the valid region.
* ``jpeg_quality``: the IJG quality 1..100 whose scaled standard luma table best matches the
  file's own quantisation table (only when the JPEG bytes are given; NaN otherwise).

The luma histogram (:func:`luma_histogram`) is an array, so it is a separate function; the monitor
pools it over a window and compares the pooled distributions.
"""
from __future__ import annotations

import io
import math
from typing import Sequence

import cv2
import numpy as np

__all__ = ["FEATURES", "LUMA_BINS", "DROP_GAP_PERIODS", "luma", "luma_histogram", "image_features",
           "jpeg_quality", "frame_timing"]

FEATURES: tuple[str, ...] = ("mean_luma", "rms_contrast", "laplacian_var", "colourfulness",
                             "noise_sigma", "jpeg_quality")
LUMA_BINS = 16
# A gap between consecutive timestamps longer than this many frame periods is a drop: 1.5 sits
# halfway between "on time" (1 period) and "one frame missing" (2 periods), so capture jitter of
# up to half a period is not counted.
DROP_GAP_PERIODS = 1.5

_BT601 = np.array([0.299, 0.587, 0.114])
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
# IJG (libjpeg) standard luminance quantisation table, ITU-T T.81 Annex K.1, natural (row) order
_IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    img = np.asarray(rgb)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"rgb must be a uint8 HxWx3 array, got dtype {img.dtype} shape {img.shape}")
    if img.shape[0] < 3 or img.shape[1] < 3:
        raise ValueError(f"rgb must be at least 3x3 (the noise mask is 3x3), got shape {img.shape}")
    return img


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8 RGB image as float64 HxW in 0..255 (not rounded)."""
    return _check_rgb(rgb).astype(np.float64) @ _BT601


def luma_histogram(rgb: np.ndarray, bins: int = LUMA_BINS) -> np.ndarray:
    """Normalised histogram of luma over ``bins`` equal bins of [0, 256) (sums to 1)."""
    if not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    hist, _ = np.histogram(luma(rgb), bins=bins, range=(0.0, 256.0))
    return hist / hist.sum()


def image_features(rgb: np.ndarray, *, jpeg_bytes: bytes | None = None) -> dict[str, float]:
    """The scalar quality features of one image (keys :data:`FEATURES`); see the module docstring."""
    img = _check_rgb(rgb)
    y = luma(img)
    h, w = y.shape
    f = img.astype(np.float64)
    # 1. colour opponents of Hasler & Suesstrunk 2003
    rg = f[..., 0] - f[..., 1]
    yb = 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
    colourfulness = math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())
    # 2. sharpness: 4-neighbour Laplacian (ksize=1), reflect-101 border, float64 output
    lap = cv2.Laplacian(y, cv2.CV_64F, ksize=1)
    # 3. Immerkaer: filter with the mask, keep only the valid (W-2)x(H-2) interior
    resp = cv2.filter2D(y, cv2.CV_64F, _IMMERKAER)[1:-1, 1:-1]
    sigma = math.sqrt(math.pi / 2.0) * float(np.abs(resp).sum()) / (6.0 * (w - 2) * (h - 2))
    return {
        "mean_luma": float(y.mean()),
        "rms_contrast": float((y / 255.0).std()),
        "laplacian_var": float(lap.var()),
        "colourfulness": float(colourfulness),
        "noise_sigma": sigma,
        "jpeg_quality": float(jpeg_quality(jpeg_bytes)) if jpeg_bytes is not None else math.nan,
    }


def _ijg_table(q: int) -> np.ndarray:
    """The IJG luma table scaled for quality q (libjpeg ``jpeg_quality_scaling``, baseline clip)."""
    scale = 5000.0 / q if q < 50 else 200.0 - 2.0 * q
    return np.clip(np.floor((_IJG_LUMA * scale + 50.0) / 100.0), 1, 255)


_IJG_TABLES = np.stack([_ijg_table(q) for q in range(1, 101)])


def jpeg_quality(jpeg_bytes: bytes) -> int:
    """Estimate the IJG quality (1..100) a JPEG was encoded with, from its luma quantisation table.

    Why: re-compression by a new camera firmware or a transcoding hop is invisible in most pixel
    statistics but sits verbatim in the DQT segment. Steps: 1. read the tables with Pillow
    (``Image.quantization``, natural order); 2. compare table 0 (luma) with the standard table
    scaled for every q = 1..100; 3. return the q of least absolute difference (ties: the lower q).
    Tables of non-IJG encoders give the nearest IJG quality, not an exact one.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(jpeg_bytes)) as im:
            tables = getattr(im, "quantization", None)
    except Exception as exc:  # Pillow raises several types for broken files
        raise ValueError(f"jpeg_bytes is not a readable JPEG ({len(jpeg_bytes)} bytes): {exc}") from exc
    if not tables or 0 not in tables or len(tables[0]) != 64:
        raise ValueError("jpeg_bytes has no 8x8 luma quantisation table (not a baseline JPEG?)")
    observed = np.asarray(tables[0], dtype=np.float64)
    err = np.abs(_IJG_TABLES - observed).sum(axis=1)
    return int(np.argmin(err)) + 1


def frame_timing(timestamps_s: Sequence[float] | np.ndarray, fps: float) -> dict[str, float]:
    """Frame drops and timestamp gaps of a video stream.

    Rule: with period ``T = 1 / fps``, a gap ``g`` between consecutive timestamps with
    ``g > DROP_GAP_PERIODS * T`` (1.5 T) is a drop gap and counts ``round(g / T) - 1`` missing
    frames; a gap <= 0 (a repeated or backwards timestamp) is counted in ``non_monotonic``.
    ``drop_rate`` is missing / (received + missing).
    """
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive finite number, got {fps!r}")
    t = np.asarray(timestamps_s, dtype=np.float64).ravel()
    if not np.all(np.isfinite(t)):
        raise ValueError("timestamps_s must be finite")
    period = 1.0 / fps
    gaps = np.diff(t)
    late = gaps[gaps > DROP_GAP_PERIODS * period]
    missing = int(np.maximum(np.round(late / period) - 1, 1).sum()) if late.size else 0
    n = int(t.size)
    return {
        "frames": float(n),
        "frame_drops": float(missing),
        "drop_gaps": float(late.size),
        "non_monotonic": float((gaps <= 0).sum()),
        "max_gap_s": float(gaps.max()) if gaps.size else 0.0,
        "drop_rate": missing / (n + missing) if n + missing else 0.0,
    }
