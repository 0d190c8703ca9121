"""Image rules and perceptual hashing: one pass over the bytes of each image.

:func:`inspect_image` reads the header with Pillow (format, mode, size, EXIF) and decodes a
reduced greyscale version (JPEG DCT scaling, so hashing costs less than a full decode) for the
64-bit DCT perceptual hash. Every problem becomes an issue row naming the file and image id; the
function never raises for bad bytes.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from cvray.runs.issues import Issue
from cvray.validate.config import ValidateConfig
from cvray.validate.rules import issue

__all__ = ["HASH_BITS", "ImageReport", "inspect_image", "phash", "phash_from_gray"]

HASH_BITS = 64
_HASH_SIDE = 32  # pHash: DCT of a 32x32 grey image, keep the 8x8 lowest frequencies
_EXIF_ORIENTATION = 0x0112
_GREY_MODES = {"L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "La"}
_HIGH_DEPTH_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F", "RGB;16", "RGBA;16"}


@dataclass
class ImageReport:
    """What one image pass found. ``phash`` is the 64-bit hash as a signed int64 (None if the
    image could not be decoded); ``sha`` identifies byte-identical files."""

    file: str
    image_id: int | None
    ok: bool = False
    width: int = 0
    height: int = 0
    format: str = ""
    mode: str = ""
    phash: int | None = None
    sha: str = ""
    issues: list[Issue] = field(default_factory=list)


def phash_from_gray(gray: np.ndarray) -> int:
    """64-bit DCT perceptual hash of a greyscale image (any size, any dtype), as int64.

    1. resize to 32x32 (area averaging), 2. 2-D DCT, 3. keep the 8x8 lowest frequencies,
    4. one bit per coefficient: above the median of the 63 non-DC coefficients.
    """
    g = np.asarray(gray, dtype=np.float32)
    g = cv2.resize(g, (_HASH_SIDE, _HASH_SIDE), interpolation=cv2.INTER_AREA)
    low = cv2.dct(g)[:8, :8].ravel()
    median = np.partition(low[1:], 31)[31]  # the median of 63 values, without np.median's overhead
    bits = low > median
    packed = np.packbits(bits).view(">u8")[0]
    return int(np.int64(np.uint64(packed).view(np.int64)))


def phash(rgb_or_gray: np.ndarray) -> int:
    """pHash of a decoded uint8 image (HxW or HxWx3 RGB)."""
    a = np.asarray(rgb_or_gray)
    if a.ndim == 3:
        a = cv2.cvtColor(a[..., :3].astype(np.uint8), cv2.COLOR_RGB2GRAY)
    return phash_from_gray(a)


def _grey_for_hash(im: Image.Image) -> np.ndarray:
    """A small greyscale array of a Pillow image, decoding JPEGs at reduced DCT scale."""
    if im.format == "JPEG" and im.mode in ("RGB", "L", "YCbCr"):
        im.draft("L", (_HASH_SIDE * 2, _HASH_SIDE * 2))
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float32)
        return a / max(float(a.max()), 1.0) * 255.0
    return np.asarray(im.convert("L"))


def _png_bit_depth(data: bytes) -> int:
    """Bit depth from a PNG's IHDR (Pillow opens 48/64-bit PNGs as 8-bit RGB(A) silently)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) > 24:
        return data[24]
    return 0


def _truncated_trailer(data: bytes, fmt: str) -> bool:
    tail = data.rstrip(b"\x00")
    if fmt == "JPEG":
        return not tail.endswith(b"\xff\xd9")
    if fmt == "PNG":
        return b"IEND" not in tail[-16:]
    return False


def inspect_image(data: bytes, file: str, image_id: int | None = None,
                  declared: tuple[int | None, int | None] | None = None,
                  cfg: ValidateConfig | None = None) -> ImageReport:
    """Check one image's bytes against the image rules; ``declared`` is (height, width)."""
    cfg = cfg or ValidateConfig()
    rep = ImageReport(file=file, image_id=image_id)
    add = rep.issues.append
    if not data:
        add(issue("image.zero_byte", f"{file}: zero-byte file", file=file, image_id=image_id))
        return rep
    rep.sha = hashlib.sha256(data).hexdigest()[:32]
    try:
        im = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        add(issue("image.unreadable", f"{file}: not a decodable image ({exc})", file=file,
                  image_id=image_id))
        return rep
    rep.format, rep.mode = im.format or "", im.mode
    rep.width, rep.height = im.size
    if rep.format not in cfg.supported_formats:
        add(issue("image.unsupported_format",
                  f"{file}: format {rep.format or 'unknown'} is not one of {list(cfg.supported_formats)}",
                  file=file, image_id=image_id))
    # 1. header facts: channels, depth, colour space, EXIF orientation
    mode = im.mode
    if mode in _GREY_MODES or mode.startswith("I;16"):
        add(issue("image.grayscale", f"{file}: single-channel image (mode {mode})", file=file,
                  image_id=image_id))
    if mode in _HIGH_DEPTH_MODES or mode.startswith("I;16") or _png_bit_depth(data) > 8:
        add(issue("image.high_bit_depth", f"{file}: {mode} samples (more than 8 bits)", file=file,
                  image_id=image_id))
    if mode in ("CMYK", "YCCK"):
        add(issue("image.cmyk", f"{file}: {mode} colour space", file=file, image_id=image_id))
    if mode in ("RGBA", "LA", "La", "RGBa", "PA") or (mode == "P" and "transparency" in im.info):
        add(issue("image.alpha", f"{file}: alpha channel (mode {mode})", file=file, image_id=image_id))
    try:
        orientation = im.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # a broken EXIF block is not a reason to stop checking the pixels
        orientation = None
    if orientation not in (None, 1):
        add(issue("image.exif_orientation", f"{file}: EXIF orientation {orientation} (pixels are "
                  "stored rotated/flipped relative to how viewers show them)", file=file,
                  image_id=image_id))
    # 2. declared size
    if declared is not None and all(v is not None for v in declared):
        dh, dw = declared
        if (rep.height, rep.width) != (dh, dw):
            hint = " (matches the EXIF-rotated size)" if orientation in (5, 6, 7, 8) and \
                (rep.width, rep.height) == (dh, dw) else ""
            add(issue("image.size_mismatch", f"{file}: decoded {rep.width}x{rep.height} (WxH) but "
                      f"declared {dw}x{dh}{hint}", file=file, image_id=image_id))
    # 3. full decode (reduced scale) for truncation and the hash
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gray = _grey_for_hash(im)
    except (OSError, ValueError, SyntaxError) as exc:
        rule = "image.truncated" if "truncated" in str(exc).lower() else "image.unreadable"
        add(issue(rule, f"{file}: decoding failed ({exc})", file=file, image_id=image_id))
        return rep
    if _truncated_trailer(data, rep.format):
        add(issue("image.truncated", f"{file}: {rep.format} data ends without its end marker",
                  file=file, image_id=image_id))
        return rep
    rep.ok = True
    rep.phash = phash_from_gray(gray)
    return rep
