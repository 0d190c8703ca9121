"""Constant-velocity Kalman filter over box states, vectorised over all tracks and stateless.

State ``x = (cx, cy, w, h, vcx, vcy, vw, vh)``: box centre, width, height and their velocities
per frame; measurement ``z = (cx, cy, w, h)``. Like ByteTrack/BoT-SORT the process and measurement
noise scale with the box size (``std_weight_position * w`` ...), so one filter fits small and large
objects. Every function takes and returns ``(mean, cov)`` arrays of shape ``(N, 8)`` and
``(N, 8, 8)`` -- the filter itself holds no per-track state, so one instance serves all tracks.

Example::

    >>> kf = KalmanFilter()
    >>> m, P = kf.initiate(np.array([[100.0, 50.0, 20.0, 40.0]]))
    >>> m, P = kf.predict(m, P)
    >>> m, P = kf.update(m, P, np.array([[104.0, 50.0, 20.0, 40.0]]))
"""
from __future__ import annotations

import numpy as np

__all__ = ["KalmanFilter", "xyxy_to_cxcywh", "cxcywh_to_xyxy"]

_NDIM = 4


def xyxy_to_cxcywh(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    wh = b[:, 2:] - b[:, :2]
    return np.concatenate([b[:, :2] + wh / 2, wh], axis=1)


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], axis=1)


class KalmanFilter:
    """Stateless constant-velocity filter (unit time step = one frame)."""

    def __init__(self, std_weight_position: float = 1.0 / 20, std_weight_velocity: float = 1.0 / 160):
        self.std_pos = float(std_weight_position)
        self.std_vel = float(std_weight_velocity)
        # x_{t+1} = F x_t: position += velocity
        self.F = np.eye(2 * _NDIM)
        self.F[:_NDIM, _NDIM:] = np.eye(_NDIM)

    def _wh4(self, mean: np.ndarray) -> np.ndarray:
        """(N, 4) of (w, h, w, h): the size each noise std is proportional to."""
        return np.concatenate([mean[:, 2:4], mean[:, 2:4]], axis=1)

    def initiate(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks from unassociated measurements (N, 4): zero velocity, wide velocity prior."""
        z = np.asarray(measurement, dtype=np.float64).reshape(-1, _NDIM)
        mean = np.concatenate([z, np.zeros_like(z)], axis=1)
        wh = self._wh4(mean)
        std = np.concatenate([2 * self.std_pos * wh, 10 * self.std_vel * wh], axis=1)
        cov = np.zeros((len(z), 2 * _NDIM, 2 * _NDIM))
        idx = np.arange(2 * _NDIM)
        cov[:, idx, idx] = std ** 2
        return mean, cov

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step ahead: ``x' = F x``, ``P' = F P F^T + Q`` with Q from the current size."""
        if len(mean) == 0:
            return mean, cov
        wh = self._wh4(mean)
        q = np.concatenate([self.std_pos * wh, self.std_vel * wh], axis=1) ** 2
        mean = mean.copy()
        mean[:, :_NDIM] += mean[:, _NDIM:]
        # F P F^T with F = [[I, I], [0, I]] written blockwise (same numbers, no 8x8 matmuls)
        pp, pv = cov[:, :_NDIM, :_NDIM], cov[:, :_NDIM, _NDIM:]
        vp, vv = cov[:, _NDIM:, :_NDIM], cov[:, _NDIM:, _NDIM:]
        out = np.empty_like(cov)
        out[:, :_NDIM, :_NDIM] = pp + pv + vp + vv
        out[:, :_NDIM, _NDIM:] = pv + vv
        out[:, _NDIM:, :_NDIM] = vp + vv
        out[:, _NDIM:, _NDIM:] = vv
        idx = np.arange(2 * _NDIM)
        out[:, idx, idx] += q
        return mean, out

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measurement-space mean (N, 4) and innovation covariance ``S = H P H^T + R`` (N, 4, 4)."""
        r = (self.std_pos * self._wh4(mean)) ** 2
        s = cov[:, :_NDIM, :_NDIM].copy()
        idx = np.arange(_NDIM)
        s[:, idx, idx] += r
        return mean[:, :_NDIM].copy(), s

    def update(self, mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Correct each track with its measurement (row i with row i)."""
        if len(mean) == 0:
            return mean, cov
        z = np.asarray(measurement, dtype=np.float64).reshape(-1, _NDIM)
        proj_mean, s = self.project(mean, cov)
        pht = cov[:, :, :_NDIM]                                   # P H^T  (N, 8, 4)
        # K = P H^T S^-1; S is symmetric, so K^T = solve(S, (P H^T)^T)
        gain = np.linalg.solve(s, pht.transpose(0, 2, 1)).transpose(0, 2, 1)
        innovation = z - proj_mean
        mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        cov = cov - gain @ s @ gain.transpose(0, 2, 1)
        return mean, cov

    def gating_distance(self, mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray
                        ) -> np.ndarray:
        """Squared Mahalanobis distance (N tracks, M measurements) in measurement space."""
        z = np.asarray(measurements, dtype=np.float64).reshape(-1, _NDIM)
        if len(mean) == 0 or len(z) == 0:
            return np.zeros((len(mean), len(z)))
        proj_mean, s = self.project(mean, cov)
        d = z[None, :, :] - proj_mean[:, None, :]                  # (N, M, 4)
        s_inv = np.linalg.inv(s)
        return np.einsum("nmi,nij,nmj->nm", d, s_inv, d)
