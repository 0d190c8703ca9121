"""Image decoding that turns every failure into a specific, named error."""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["ImageDecodeError", "decode_image"]


class ImageDecodeError(ValueError):
    def __init__(self, name: str, reason: str, rule: str = "image.unreadable"):
        super().__init__(f"{name}: {reason}")
        self.name, self.reason, self.rule = name, reason, rule


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode JPEG/PNG/... bytes to uint8 HxWx3 RGB; raise :class:`ImageDecodeError` naming ``name``."""
    if not data:
        raise ImageDecodeError(name, "zero-byte file", rule="image.zero_byte")
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if arr is None:
        raise ImageDecodeError(name, "could not decode image (corrupt or unsupported format)")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
