"""Resize / letterbox of images to a model's input size and the exact inverse for boxes and masks.

A :class:`Letterbox` holds the affine map ``x_in = x_orig * scale_x + pad_x`` (same for y) in
continuous pixel coordinates (pixel ``i`` covers ``[i, i+1)``). Boxes map forward and back with
that formula; masks map back by sampling each original pixel centre in the model-space mask
(nearest neighbour), which is the exact inverse of the forward resize whenever the scale is an
integer or its reciprocal.

Example::

    lb = Letterbox.fit((480, 640), (512, 512))      # scale 0.8, pad top 64
    img_in = lb.apply_image(img)
    boxes_orig = lb.boxes_to_original(boxes_in)
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Letterbox"]


@dataclass(frozen=True)
class Letterbox:
    """Affine map between original image space and model input space."""

    src_hw: tuple[int, int]
    dst_hw: tuple[int, int]
    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    pad_value: int = 114

    @classmethod
    def fit(cls, src_hw: tuple[int, int], dst_hw: tuple[int, int], *, mode: str = "letterbox",
            pad_value: int = 114) -> "Letterbox":
        """letterbox: keep aspect, scale to fit, pad centred. resize: stretch. none: identity."""
        h, w = int(src_hw[0]), int(src_hw[1])
        H, W = int(dst_hw[0]), int(dst_hw[1])
        if h <= 0 or w <= 0:
            raise ValueError(f"image size must be positive, got {src_hw}")
        if mode == "none":
            return cls((h, w), (h, w), 1.0, 1.0, 0, 0, pad_value)
        if mode == "resize":
            return cls((h, w), (H, W), W / w, H / h, 0, 0, pad_value)
        if mode != "letterbox":
            raise ValueError(f"geometry mode must be letterbox, resize or none, got {mode!r}")
        s = min(H / h, W / w)
        nh, nw = int(round(h * s)), int(round(w * s))
        # the content size is rounded to whole pixels; use the realised per-axis scale
        return cls((h, w), (H, W), nw / w, nh / h, (W - nw) // 2, (H - nh) // 2, pad_value)

    @property
    def content_hw(self) -> tuple[int, int]:
        return int(round(self.src_hw[0] * self.scale_y)), int(round(self.src_hw[1] * self.scale_x))

    # -- images ---------------------------------------------------------------------------
    def apply_image(self, image: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """Resize + pad an HxW[xC] image into the model input."""
        if image.shape[:2] != tuple(self.src_hw):
            raise ValueError(f"image is {image.shape[:2]}, this map was built for {self.src_hw}")
        ch, cw = self.content_hw
        if (ch, cw) == tuple(self.src_hw):
            content = image
        else:
            content = cv2.resize(image, (cw, ch), interpolation=interpolation)
        if (ch, cw) == tuple(self.dst_hw):
            return np.ascontiguousarray(content)
        out = np.full(tuple(self.dst_hw) + image.shape[2:], self.pad_value, dtype=image.dtype)
        out[self.pad_y:self.pad_y + ch, self.pad_x:self.pad_x + cw] = content
        return out

    def apply_mask(self, mask: np.ndarray) -> np.ndarray:
        """Forward map of a label/binary mask (nearest neighbour; padding = 0)."""
        ch, cw = self.content_hw
        content = cv2.resize(mask.astype(np.uint8), (cw, ch), interpolation=cv2.INTER_NEAREST_EXACT) \
            if (ch, cw) != tuple(self.src_hw) else mask.astype(np.uint8)
        out = np.zeros(tuple(self.dst_hw), dtype=np.uint8)
        out[self.pad_y:self.pad_y + ch, self.pad_x:self.pad_x + cw] = content
        return out.astype(mask.dtype)

    # -- boxes ----------------------------------------------------------------------------
    def boxes_to_model(self, boxes: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        s = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y])
        p = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float64)
        return b * s + p

    def boxes_to_original(self, boxes: np.ndarray, clip: bool = True) -> np.ndarray:
        """Inverse map of xyxy boxes; clipped to the original image by default."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        s = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y])
        p = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float64)
        out = (b - p) / s
        if clip:
            h, w = self.src_hw
            out = np.clip(out, 0.0, np.array([w, h, w, h], dtype=np.float64))
        return out

    # -- masks ----------------------------------------------------------------------------
    def masks_to_original(self, masks: np.ndarray) -> np.ndarray:
        """(N, H_in, W_in) or (H_in, W_in) masks → original size by sampling pixel centres.

        Original pixel (i, j) has centre (j + .5, i + .5); in model space that is
        (x, y) = ((j + .5) * scale_x + pad_x, ...), read from model pixel floor(x), floor(y).
        """
        m = np.asarray(masks)
        single = m.ndim == 2
        if single:
            m = m[None]
        h, w = self.src_hw
        xs = np.floor((np.arange(w) + 0.5) * self.scale_x + self.pad_x).astype(np.int64)
        ys = np.floor((np.arange(h) + 0.5) * self.scale_y + self.pad_y).astype(np.int64)
        xs = np.clip(xs, 0, m.shape[2] - 1)
        ys = np.clip(ys, 0, m.shape[1] - 1)
        out = m[:, ys[:, None], xs[None, :]]
        return out[0] if single else out

    def to_dict(self) -> dict:
        return {"src_hw": list(self.src_hw), "dst_hw": list(self.dst_hw), "scale_x": self.scale_x,
                "scale_y": self.scale_y, "pad_x": self.pad_x, "pad_y": self.pad_y}
