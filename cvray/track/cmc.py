"""Camera-motion compensation: a global similarity transform between consecutive frames.

Corners (``cv2.goodFeaturesToTrack``) of the previous frame are followed into the current one with
pyramidal Lucas-Kanade flow (seeded by the global phase-correlation shift) and a 4-dof similarity (rotation, uniform scale, translation) is fitted
with ``cv2.estimateAffinePartial2D`` + RANSAC, so moving objects are outliers. The tracker applies
the transform to its Kalman predictions before association (BoT-SORT's GMC), which keeps IoU
matching working while the camera pans.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np

from cvray.track.config import CMCConfig

__all__ = ["CameraMotion", "warp_states"]

log = logging.getLogger(__name__)
_QUALITY = 0.01          # goodFeaturesToTrack quality level (relative to the best corner)
_MIN_DISTANCE = 3        # px between corners (after downscaling)
_MIN_INLIERS = 6         # fewer tracked points: keep the identity transform


def warp_states(warp: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply a 2x3 transform to Kalman states ``(cx, cy, w, h, v...)``: every 2-vector block is
    rotated/scaled by the linear part, the centre is also translated."""
    R = warp[:, :2]
    R8 = np.kron(np.eye(4), R)
    mean = mean @ R8.T
    mean[:, :2] += warp[:, 2]
    cov = R8 @ cov @ R8.T
    return mean, cov


class CameraMotion:
    """Stateful estimator (remembers the previous frame); ``reset()`` between sequences."""

    def __init__(self, cfg: CMCConfig | None = None) -> None:
        self.cfg = cfg or CMCConfig()
        self.reset()

    def reset(self) -> None:
        self._prev: np.ndarray | None = None

    def _gray(self, image: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        d = self.cfg.downscale
        if d > 1:
            gray = cv2.resize(gray, (gray.shape[1] // d, gray.shape[0] // d), interpolation=cv2.INTER_AREA)
        return gray

    def estimate(self, image: np.ndarray) -> np.ndarray:
        """2x3 transform mapping previous-frame pixel coordinates to this frame's (identity first)."""
        gray = self._gray(image)
        prev, self._prev = self._prev, gray
        eye = np.eye(2, 3)
        if prev is None or prev.shape != gray.shape:
            return eye
        pts = cv2.goodFeaturesToTrack(prev, maxCorners=self.cfg.max_features, qualityLevel=_QUALITY,
                                      minDistance=_MIN_DISTANCE, blockSize=3)
        if pts is None or len(pts) < _MIN_INLIERS:
            return eye
        # global shift by phase correlation first: it seeds the flow, so periodic texture cannot
        # pull a point one period off (an aliasing failure of plain pyramidal LK)
        window = cv2.createHanningWindow(gray.shape[::-1], cv2.CV_32F)
        (dx, dy), _resp = cv2.phaseCorrelate(prev.astype(np.float32), gray.astype(np.float32), window)
        guess = (pts + np.array([dx, dy], np.float32)).astype(np.float32)
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev, gray, pts, guess, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
        ok = status.ravel() == 1
        if ok.sum() < _MIN_INLIERS:
            return eye
        warp, inliers = cv2.estimateAffinePartial2D(
            pts[ok], nxt[ok], method=cv2.RANSAC,
            ransacReprojThreshold=self.cfg.ransac_threshold / self.cfg.downscale)
        if warp is None or inliers is None or inliers.sum() < _MIN_INLIERS:
            log.debug("camera motion: too few inliers, assuming a static camera")
            return eye
        warp = warp.astype(np.float64)
        warp[:, 2] *= self.cfg.downscale
        return warp

    def apply(self, warp: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return warp_states(warp, mean, cov)
