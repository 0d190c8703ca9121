"""Constant-velocity Kalman filter over box states, vectorised over all tracks and stateless.

State ``x = (cx, cy, w, h, vcx, vcy, vw, vh)``: box centre, width, height and their velocities
per frame; measurement ``z = (cx, cy, w, h)``. Like ByteTrack/BoT-SORT the process and measurement
noise scale with the box size (``std_weight_position * w`` ...), so one filter fits small and large
objects. Every function takes and returns ``(mean, cov)`` arrays of shape ``(N, 8)`` and
``(N, 8, 8)`` -- the filter itself holds no per-track state, so one instance serves all tracks.

A tracker keeps each track's mean and covariance in one row of a packed *state* array (one gather
and one scatter per frame instead of two): ``initiate_state`` / ``predict_state`` /
``update_state`` / ``gating_state`` work on it, ``pack`` / ``unpack`` convert.
:class:`AxisKalmanFilter` is the same filter stored per coordinate (20 numbers per track, the
step written as one matrix product), exact while no transform mixes the coordinates.

Example::

    >>> kf = KalmanFilter()
    >>> m, P = kf.initiate(np.array([[100.0, 50.0, 20.0, 40.0]]))
    >>> m, P = kf.predict(m, P)
    >>> m, P = kf.update(m, P, np.array([[104.0, 50.0, 20.0, 40.0]]))
"""
from __future__ import annotations

import numpy as np

__all__ = ["AxisKalmanFilter", "KalmanFilter", "xyxy_to_cxcywh", "cxcywh_to_xyxy"]

_NDIM = 4
_WH4 = np.array([2, 3, 2, 3])
_GAIN_BLOCKS = np.array([0, 1, 0, 0, 1])                       # k_p, k_v, k_p, k_p, k_v
# columns (position, position, pp, pv, pv) of the axis filter's packed state
_V_TERMS = np.r_[0:_NDIM, 0:_NDIM, 2 * _NDIM:4 * _NDIM, 3 * _NDIM:4 * _NDIM]
_V_TERMS2 = _V_TERMS.reshape(5, _NDIM)
# columns (pp, pv, pp, pp, pv): the gains' numerators, block by block (_GAIN_BLOCKS of (pp, pv))
_G_TERMS = (2 * _NDIM + _NDIM * _GAIN_BLOCKS[:, None] + np.arange(_NDIM)[None, :])
_G_FLAT = _G_TERMS.ravel()
# the pp columns once per block (the innovation variance each gain divides by)
_S_TERMS = np.tile(np.arange(2 * _NDIM, 3 * _NDIM), 5)


# both box conversions are linear maps of the 4-vector: one matrix product each
XYXY_TO_CXCYWH = np.array([[0.5, 0, -1, 0], [0, 0.5, 0, -1], [0.5, 0, 1, 0], [0, 0.5, 0, 1]])
CXCYWH_TO_XYXY = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [-0.5, 0, 0.5, 0], [0, -0.5, 0, 0.5]])
#: xyxy -> (cx, cy, w, h, cx, cy, w, h): the measurement for both blocks the update subtracts it from
_XYXY_TO_Z2 = np.tile(XYXY_TO_CXCYWH, 2)


def xyxy_to_cxcywh(b: np.ndarray) -> np.ndarray:
    return np.asarray(b, dtype=np.float64).reshape(-1, 4) @ XYXY_TO_CXCYWH


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    return np.asarray(b, dtype=np.float64).reshape(-1, 4) @ CXCYWH_TO_XYXY


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
        return mean[:, _WH4]

    # -- packed state: row = mean (8) + covariance (64, row-major) --------------------------------
    state_dim = 2 * _NDIM + (2 * _NDIM) ** 2

    def pack(self, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
        return np.concatenate([mean, cov.reshape(len(cov), (2 * _NDIM) ** 2)], axis=1)

    def unpack(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return state[:, :2 * _NDIM], state[:, 2 * _NDIM:].reshape(-1, 2 * _NDIM, 2 * _NDIM)

    def initiate_state(self, measurement: np.ndarray) -> np.ndarray:
        return self.pack(*self.initiate(measurement))

    def predict_state(self, state: np.ndarray) -> np.ndarray:
        return self.pack(*self.predict(*self.unpack(state)))

    def update_state(self, state: np.ndarray, measurement: np.ndarray,
                     r_scale: np.ndarray | None = None) -> np.ndarray:
        return self.pack(*self.update(*self.unpack(state), measurement, r_scale))

    def update_boxes(self, state: np.ndarray, boxes: np.ndarray,
                     r_scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`update_state` with xyxy ``boxes`` as the measurements; returns the new states
        and the measurements ``(cx, cy, w, h)``."""
        z = xyxy_to_cxcywh(boxes)
        return self.update_state(state, z, r_scale), z

    def gating_state(self, state: np.ndarray, measurements: np.ndarray) -> np.ndarray:
        return self.gating_distance(*self.unpack(state), measurements)

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

    def project(self, mean: np.ndarray, cov: np.ndarray, r_scale: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Measurement-space mean (N, 4) and innovation covariance ``S = H P H^T + R`` (N, 4, 4);
        ``r_scale`` (N,) multiplies each row's ``R`` (NSA Kalman: ``1 - confidence``)."""
        r = (self.std_pos * self._wh4(mean)) ** 2
        if r_scale is not None:
            r = r * np.asarray(r_scale)[:, None]
        s = cov[:, :_NDIM, :_NDIM].copy()
        idx = np.arange(_NDIM)
        s[:, idx, idx] += r
        return mean[:, :_NDIM].copy(), s

    def update(self, mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray,
               r_scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Correct each track with its measurement (row i with row i)."""
        if len(mean) == 0:
            return mean, cov
        z = np.asarray(measurement, dtype=np.float64).reshape(-1, _NDIM)
        proj_mean, s = self.project(mean, cov, r_scale)
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


class AxisKalmanFilter(KalmanFilter):
    """The same filter, stored per coordinate: exact while no transform mixes the coordinates.

    With ``F = [[I, I], [0, I]]``, ``H = [I, 0]`` and diagonal ``Q``, ``R`` and initial covariance,
    every coordinate (cx, cy, w, h) and its velocity form an independent 2x2 block: the 8x8
    covariance never gets an entry outside the four blocks. The packed state keeps only those
    blocks -- row = mean (8), position variances ``pp`` (4), position-velocity covariances ``pv``
    (4), velocity variances ``vv`` (4) -- and the prediction is one matrix product (plus the
    size-dependent process noise, another one). The numbers equal :class:`KalmanFilter`'s
    (``to_full`` expands the blocks) at a fraction of the per-call cost a tracker pays every frame.
    A camera-motion warp that rotates couples the coordinates, so the tracker uses the full filter
    when CMC is on. The ``(mean, cov)`` methods use ``cov`` of shape ``(N, 3, 4)`` = (pp, pv, vv).
    """

    state_dim = 5 * _NDIM

    def __init__(self, std_weight_position: float = 1.0 / 20, std_weight_velocity: float = 1.0 / 160):
        super().__init__(std_weight_position, std_weight_velocity)
        n, i = _NDIM, np.arange(_NDIM)
        sp2, sv2 = self.std_pos ** 2, self.std_vel ** 2
        # state' = state @ A + (w^2, h^2) @ B  (row-vector convention)
        A = np.zeros((5 * n, 5 * n))
        A[i, i] = A[n + i, i] = A[n + i, n + i] = 1.0                # x += v ; v = v
        A[2 * n + i, 2 * n + i] = 1.0                                  # pp' = pp + 2 pv + vv + q_p
        A[3 * n + i, 2 * n + i] = 2.0
        A[4 * n + i, 2 * n + i] = 1.0
        A[3 * n + i, 3 * n + i] = A[4 * n + i, 3 * n + i] = 1.0       # pv' = pv + vv
        A[4 * n + i, 4 * n + i] = 1.0                                  # vv' = vv + q_v
        B = np.zeros((2, 5 * n))
        wh_of = i % 2                                                  # cx, w <- w ; cy, h <- h
        B[wh_of, 2 * n + i] = sp2
        B[wh_of, 4 * n + i] = sv2
        R = np.zeros((2, n))                                           # measurement noise r = sp2 * wh^2
        R[wh_of, i] = sp2
        P0 = np.zeros((2, 5 * n))                                      # initial (2 sp wh)^2, (10 sv wh)^2
        P0[wh_of, 2 * n + i] = (2 * self.std_pos) ** 2
        P0[wh_of, 4 * n + i] = (10 * self.std_vel) ** 2
        self._A, self._B, self._R, self._P0 = A, B, R, P0
        self._R5 = np.tile(R, 5)                                       # update_boxes: R per block

    # -- packed state ----------------------------------------------------------------------------
    def pack(self, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
        return np.concatenate([mean, cov.reshape(len(cov), 3 * _NDIM)], axis=1)

    def unpack(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return state[:, :2 * _NDIM], state[:, 2 * _NDIM:].reshape(-1, 3, _NDIM)

    def initiate_state(self, measurement: np.ndarray) -> np.ndarray:
        z = np.asarray(measurement, dtype=np.float64).reshape(-1, _NDIM)
        state = np.square(z[:, 2:4]) @ self._P0
        state[:, :_NDIM] = z
        return state

    def predict_state(self, state: np.ndarray) -> np.ndarray:
        """``x' = F x``; per coordinate ``pp' = pp + 2 pv + vv + q_p``, ``pv' = pv + vv``,
        ``vv' = vv + q_v``, with ``q`` from the size before the step (as the full filter)."""
        return state @ self._A + np.square(state[:, 2:4]) @ self._B

    def _innovation_var(self, state: np.ndarray, r_scale: np.ndarray | None = None) -> np.ndarray:
        """Diagonal of ``S = H P H^T + R`` (N, 4): ``pp + std_pos^2 * (w, h, w, h)^2`` (``R``
        times ``r_scale`` per row when given)."""
        r = np.square(state[:, 2:4]) @ self._R
        if r_scale is not None:
            r *= np.asarray(r_scale)[:, None]
        return state[:, 2 * _NDIM:3 * _NDIM] + r

    def update_state(self, state: np.ndarray, measurement: np.ndarray,
                     r_scale: np.ndarray | None = None) -> np.ndarray:
        """Gains ``k_p = pp / s``, ``k_v = pv / s`` with ``s = pp + r``; ``P' = P - K S K^T``:
        ``pp' = pp (1 - k_p)``, ``pv' = pv (1 - k_p)``, ``vv' = vv - k_v pv``."""
        # state' = state - G * V with, per block of 4, G = (k_p, k_v, k_p, k_p, k_v) and
        # V = (-innovation, -innovation, pp, pv, pv): every term of the update in one product
        # (G and V gathered by one ``take`` each: few numpy calls for a handful of tracks)
        n = _NDIM
        z = np.asarray(measurement, dtype=np.float64).reshape(-1, n)
        m = len(state)
        r = np.square(state[:, 2:4]) @ self._R
        if r_scale is not None:
            r *= np.asarray(r_scale)[:, None]
        s = state[:, 2 * n:3 * n] + r                                      # innovation variance
        g = state.take(_G_TERMS, axis=1)                                   # (pp, pv, pp, pp, pv)
        g /= s[:, None, :]                                                 # (k_p, k_v, k_p, k_p, k_v)
        v = state.take(_V_TERMS2, axis=1)                                  # (x, x, pp, pv, pv)
        v[:, :2] -= z[:, None, :]                                          # x - z = -innovation
        g *= v
        g = g.reshape(m, 5 * n)
        np.subtract(state, g, out=g)
        return g

    def update_boxes(self, state: np.ndarray, boxes: np.ndarray,
                     r_scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`update_state` with xyxy ``boxes`` (M, 4) as the measurements; returns the new
        states and the measurements ``(cx, cy, w, h)`` -- the same numbers as ``update_state(state,
        xyxy_to_cxcywh(boxes), r_scale)`` in fewer calls: the conversion writes ``z`` straight into
        the two blocks it enters (each column of the wider product is the same dot product, its
        other terms exact zeros), and every term is laid out (M, 20) like the state, so no call
        broadcasts (one that does costs several times a plain one for a handful of tracks)."""
        zz = np.asarray(boxes, dtype=np.float64).reshape(-1, _NDIM) @ _XYXY_TO_Z2   # (z, z)
        r = np.square(state[:, 2:4]) @ self._R5                            # r, 5 times
        if r_scale is not None:
            r *= np.asarray(r_scale)[:, None]
        r += state.take(_S_TERMS, axis=1)                                  # s = pp + r, 5 times
        g = state.take(_G_FLAT, axis=1)                                    # (pp, pv, pp, pp, pv)
        g /= r                                                             # (k_p, k_v, k_p, k_p, k_v)
        v = state.take(_V_TERMS, axis=1)                                   # (x, x, pp, pv, pv)
        v[:, :2 * _NDIM] -= zz                                             # x - z = -innovation
        g *= v
        np.subtract(state, g, out=g)
        return g, zz[:, :_NDIM]

    def gating_state(self, state: np.ndarray, measurements: np.ndarray) -> np.ndarray:
        z = np.asarray(measurements, dtype=np.float64).reshape(-1, _NDIM)
        if len(state) == 0 or len(z) == 0:
            return np.zeros((len(state), len(z)))
        s = self._innovation_var(state)
        d = z[None, :, :] - state[:, None, :_NDIM]
        return np.einsum("nmi,nmi->nm", d, d / s[:, None, :])

    # -- (mean, cov) interface, cov = (N, 3, 4) blocks --------------------------------------------
    @staticmethod
    def to_full(cov: np.ndarray) -> np.ndarray:
        """``(N, 8, 8)`` covariance of ``(N, 3, 4)`` blocks."""
        out = np.zeros((len(cov), 2 * _NDIM, 2 * _NDIM))
        i = np.arange(_NDIM)
        out[:, i, i] = cov[:, 0]
        out[:, i, i + _NDIM] = cov[:, 1]
        out[:, i + _NDIM, i] = cov[:, 1]
        out[:, i + _NDIM, i + _NDIM] = cov[:, 2]
        return out

    def initiate(self, measurement):
        return self.unpack(self.initiate_state(measurement))

    def predict(self, mean, cov):
        return self.unpack(self.predict_state(self.pack(mean, cov)))

    def update(self, mean, cov, measurement, r_scale=None):
        return self.unpack(self.update_state(self.pack(mean, cov), measurement, r_scale))

    def project(self, mean, cov, r_scale=None):
        """Measurement-space mean (N, 4) and the diagonal of ``S`` (N, 4) (S is diagonal here)."""
        return mean[:, :_NDIM].copy(), self._innovation_var(self.pack(mean, cov), r_scale)

    def gating_distance(self, mean, cov, measurements):
        return self.gating_state(self.pack(mean, cov), measurements)
