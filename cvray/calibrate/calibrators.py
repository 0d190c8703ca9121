"""Score calibrators for detections: temperature, Platt (logistic) and isotonic, plus per class.

Each maps a detection score to the probability that it is a TP at the matching IoU threshold.
They are fitted on a *validation* split (the scores and TP flags of ``match_detections``) and
applied to test / prediction scores; fitting on the split you report on would hide overfitting.

* ``TemperatureScaling`` — ``sigmoid(logit(s) / T)``, Guo et al., "On Calibration of Modern
  Neural Networks" (ICML 2017), in its binary form; one parameter, so it cannot overfit much.
* ``PlattScaling`` — ``sigmoid(a * logit(s) + b)``, Platt, "Probabilistic Outputs for Support
  Vector Machines" (1999), on the score's logit as Küppers et al. (2020) do for detectors.
* ``IsotonicCalibrator`` — the monotone step function of least squared error, Zadrozny & Elkan,
  "Transforming Classifier Scores into Accurate Multiclass Probability Estimates" (KDD 2002).

Parametric ones are fitted by minimising the negative log-likelihood of the TP flags with
``scipy.optimize.minimize`` (``log T`` and ``a >= 0`` keep them monotone). All preserve the
ranking of scores (non-decreasing), so AP is unchanged by a global calibrator. ``to_dict`` gives
plain JSON data with a ``kind`` field, saved beside the model; ``load_calibrator`` reads it back.
"""
from __future__ import annotations

from types import MappingProxyType

import numpy as np
from scipy.optimize import isotonic_regression, minimize

__all__ = ["TemperatureScaling", "PlattScaling", "IsotonicCalibrator", "PerClassCalibrator",
           "fit_calibrator", "load_calibrator", "CALIBRATOR_KINDS", "LOGIT_EPS"]

#: Scores are clipped to [eps, 1 - eps] before the logit (a score of exactly 0 or 1 is finite).
LOGIT_EPS = 1e-7


def _logit(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, LOGIT_EPS, 1.0 - LOGIT_EPS)
    return np.log(s) - np.log1p(-s)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _scores(scores, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if not (np.isfinite(s).all() and ((s >= 0) & (s <= 1)).all()):
        raise ValueError(f"{name} must be finite and in [0, 1]")
    return s


def _fit_data(scores, tp) -> tuple[np.ndarray, np.ndarray]:
    s = _scores(scores).reshape(-1)
    y = np.asarray(tp).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"scores ({s.shape}) and tp ({y.shape}) must have the same length")
    if not len(s):
        raise ValueError("cannot fit a calibrator on zero detections")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("tp must hold only booleans / 0 / 1")
    return s, y.astype(np.float64)


def _nll(f: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean Bernoulli NLL of logits ``f`` and its gradient w.r.t. ``f`` (stable: logaddexp)."""
    return float(np.mean(np.logaddexp(0.0, f) - y * f)), (_sigmoid(f) - y) / len(y)


class TemperatureScaling:
    """``sigmoid(logit(s) / T)``; ``T > 1`` softens an overconfident detector."""

    kind = "temperature"

    def __init__(self, temperature: float = 1.0):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def fit(self, scores, tp) -> TemperatureScaling:
        s, y = _fit_data(scores, tp)
        z = _logit(s)

        # 1. optimise u = log(1/T) so T stays positive; 2. NLL gradient by the chain rule
        def loss(u):
            k = np.exp(u[0])
            v, g = _nll(z * k, y)
            return v, np.array([np.sum(g * z) * k])

        res = minimize(loss, np.zeros(1), jac=True, method="L-BFGS-B", bounds=[(-10.0, 10.0)])
        self.temperature = float(np.exp(-res.x[0]))
        return self

    def __call__(self, scores, labels=None) -> np.ndarray:
        return _sigmoid(_logit(_scores(scores)) / self.temperature)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "temperature": self.temperature}

    @classmethod
    def from_dict(cls, d: dict) -> TemperatureScaling:
        return cls(float(d["temperature"]))


class PlattScaling:
    """``sigmoid(a * logit(s) + b)`` with ``a >= 0`` (ranking kept); ``a=1, b=0`` is the identity."""

    kind = "platt"

    def __init__(self, a: float = 1.0, b: float = 0.0):
        if not a >= 0:
            raise ValueError(f"Platt slope a must be >= 0 to keep the score ranking, got {a}")
        self.a, self.b = float(a), float(b)

    def fit(self, scores, tp) -> PlattScaling:
        s, y = _fit_data(scores, tp)
        z = _logit(s)

        # 1. NLL of sigmoid(a z + b); 2. bounded a >= 0 (and |a|,|b| finite for separable data)
        def loss(p):
            v, g = _nll(p[0] * z + p[1], y)
            return v, np.array([np.sum(g * z), np.sum(g)])

        res = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                       bounds=[(0.0, 1e3), (-1e3, 1e3)])
        self.a, self.b = float(res.x[0]), float(res.x[1])
        return self

    def __call__(self, scores, labels=None) -> np.ndarray:
        return _sigmoid(self.a * _logit(_scores(scores)) + self.b)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, d: dict) -> PlattScaling:
        return cls(float(d["a"]), float(d["b"]))


class IsotonicCalibrator:
    """Monotone step function fitted by isotonic regression, applied by linear interpolation.

    Only the first and last score of every constant block are stored: ``np.interp`` through those
    points equals interpolation through all fitted points, and the JSON stays small.
    """

    kind = "isotonic"

    def __init__(self, x=None, y=None):
        self.x = None if x is None else np.asarray(x, dtype=np.float64)
        self.y = None if y is None else np.asarray(y, dtype=np.float64)
        if self.x is not None and (self.y is None or self.x.shape != self.y.shape or self.x.ndim != 1
                                   or not len(self.x) or (np.diff(self.x) < 0).any()):
            raise ValueError("isotonic x, y must be equal-length non-empty 1-D arrays with x sorted")

    def fit(self, scores, tp) -> IsotonicCalibrator:
        s, y = _fit_data(scores, tp)
        # 1. unique sorted scores, each with its mean TP rate and its count as weight (ties pooled)
        xs, inv, cnt = np.unique(s, return_inverse=True, return_counts=True)
        ys = np.bincount(inv, weights=y) / cnt
        # 2. pool-adjacent-violators: the non-decreasing fit of least weighted squared error
        fit = np.clip(isotonic_regression(ys, weights=cnt.astype(np.float64), increasing=True).x, 0.0, 1.0)
        # 3. keep the two ends of every constant block
        change = np.flatnonzero(np.diff(fit) != 0)
        keep = np.unique(np.concatenate(([0, len(xs) - 1], change, change + 1)))
        self.x, self.y = xs[keep], fit[keep]
        return self

    def __call__(self, scores, labels=None) -> np.ndarray:
        if self.x is None:
            raise ValueError("IsotonicCalibrator is not fitted: call fit(scores, tp) or from_dict(...) first")
        return np.clip(np.interp(_scores(scores), self.x, self.y), 0.0, 1.0)

    def to_dict(self) -> dict:
        if self.x is None:
            raise ValueError("IsotonicCalibrator is not fitted; nothing to save")
        return {"kind": self.kind, "x": self.x.tolist(), "y": self.y.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> IsotonicCalibrator:
        return cls(d["x"], d["y"])


#: ``kind`` → class of the global calibrators (read-only).
CALIBRATOR_KINDS = MappingProxyType({c.kind: c for c in (TemperatureScaling, PlattScaling, IsotonicCalibrator)})


class PerClassCalibrator:
    """One calibrator per category id, ``fallback`` for the rest (classes too rare to fit).

    Ranking is preserved within a class, not across classes.
    """

    kind = "per_class"

    def __init__(self, calibrators: dict[int, object], fallback):
        self.calibrators = {int(c): k for c, k in calibrators.items()}
        self.fallback = fallback

    def __call__(self, scores, labels=None) -> np.ndarray:
        s = _scores(scores)
        if labels is None:
            raise ValueError("PerClassCalibrator needs the detections' labels")
        labels = np.asarray(labels)
        if labels.shape != s.shape:
            raise ValueError(f"labels {labels.shape} must match scores {s.shape}")
        out = self.fallback(s)
        for c, cal in self.calibrators.items():
            m = labels == c
            if m.any():
                out[m] = cal(s[m])
        return out

    def to_dict(self) -> dict:
        return {"kind": self.kind, "fallback": self.fallback.to_dict(),
                "classes": {str(c): k.to_dict() for c, k in self.calibrators.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> PerClassCalibrator:
        return cls({int(c): load_calibrator(k) for c, k in d["classes"].items()}, load_calibrator(d["fallback"]))


def fit_calibrator(kind: str, scores, tp, *, labels=None, min_per_class: int = 50):
    """Fit a calibrator of ``kind`` ("temperature", "platt", "isotonic").

    With ``labels``, one per class that has at least ``min_per_class`` detections with both TPs
    and FPs, and a fallback fitted on all detections for the others.
    """
    if kind not in CALIBRATOR_KINDS:
        raise ValueError(f"unknown calibrator kind {kind!r}; known: {sorted(CALIBRATOR_KINDS)}")
    s, y = _fit_data(scores, tp)
    fallback = CALIBRATOR_KINDS[kind]().fit(s, y)
    if labels is None:
        return fallback
    labels = np.asarray(labels).reshape(-1)
    if labels.shape != s.shape:
        raise ValueError(f"labels {labels.shape} must match scores {s.shape}")
    per = {}
    for c in np.unique(labels):
        m = labels == c
        if m.sum() >= min_per_class and 0 < y[m].sum() < m.sum():
            per[int(c)] = CALIBRATOR_KINDS[kind]().fit(s[m], y[m])
    return PerClassCalibrator(per, fallback)


def load_calibrator(d: dict):
    """The calibrator saved by ``to_dict`` (its ``kind`` picks the class)."""
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind == PerClassCalibrator.kind:
        return PerClassCalibrator.from_dict(d)
    if kind not in CALIBRATOR_KINDS:
        raise ValueError(f"calibrator dict has unknown kind {kind!r}; known: "
                         f"{sorted([*CALIBRATOR_KINDS, PerClassCalibrator.kind])}")
    return CALIBRATOR_KINDS[kind].from_dict(d)
