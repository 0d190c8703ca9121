"""Two-sample drift statistics: the population stability index (PSI) and Kolmogorov-Smirnov.

PSI (Siddiqi 2006, "Credit Risk Scorecards", ch. 8; Yurdakul 2018, "Statistical properties of
the population stability index") is the symmetrised Kullback-Leibler divergence of two binned
distributions, ``PSI = sum_i (c_i - r_i) ln(c_i / r_i)`` over bin proportions r (reference) and
c (current). Its customary reading is stated as named constants: < 0.1 stable, 0.1 - 0.2 a
moderate shift, > 0.2 a significant shift. KS (``scipy.stats.ks_2samp``, two-sided, exact for
small samples) is reported beside it, significant at p < 0.01.

Bin rule for a continuous feature (:func:`quantile_edges`): the interior edges are the unique
reference quantiles at k / B, k = 1 .. B-1 (B = 10 deciles), plus the reference minimum and
maximum; bins are ``(-inf, min)``, ``[min, e_1]``, ``(e_1, e_2]``, ..., ``(e_{B-1}, max]``,
``(max, inf)``. The two outer bins are empty in the reference: they let a point-mass reference (a
camera's constant JPEG quality) still see a move to either side, where deciles alone would put
every value into one bin. Empty bins are floored at ``PSI_EPS = 1e-4`` before the logarithm.

Noise floor: for two samples of n and m values from one distribution the expected PSI over B bins
is about (B - 1)(1/n + 1/m) (the chi-square limit of the KL divergence), 0.036 for B = 10 and
n = m = 500 -- so a window must hold some hundreds of frames before 0.1 means anything.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

__all__ = ["PSI_STABLE", "PSI_SIGNIFICANT", "PSI_BINS", "PSI_EPS", "KS_PVALUE", "psi_level",
           "psi_from_proportions", "quantile_edges", "bin_counts", "psi", "psi_categorical", "ks",
           "psi_noise_floor"]

PSI_STABLE = 0.1        # PSI below this: no shift
PSI_SIGNIFICANT = 0.2   # PSI above this: significant shift (0.1 .. 0.2 is "moderate")
PSI_BINS = 10           # reference deciles
PSI_EPS = 1e-4          # floor of an empty bin's proportion
KS_PVALUE = 0.01        # KS two-sided p below this: the samples differ


def psi_level(value: float | None) -> str | None:
    """``"stable"`` (< 0.1), ``"moderate"`` (0.1 .. 0.2) or ``"significant"`` (> 0.2); None for None/NaN."""
    if value is None or not math.isfinite(value):
        return None
    return "stable" if value < PSI_STABLE else "moderate" if value <= PSI_SIGNIFICANT else "significant"


def psi_from_proportions(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray,
                         *, eps: float = PSI_EPS) -> float:
    """PSI of two aligned vectors of bin counts or proportions (each normalised to sum 1 here)."""
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    if r.shape != c.shape or r.ndim != 1 or r.size < 1:
        raise ValueError(f"reference and current must be 1-D of one length, got {r.shape} and {c.shape}")
    if (r < 0).any() or (c < 0).any() or r.sum() <= 0 or c.sum() <= 0:
        raise ValueError("bin counts must be non-negative with a positive total")
    # 1. proportions; 2. floor empty bins at eps (so ln stays finite); 3. sum (c - r) ln(c / r)
    r = np.maximum(r / r.sum(), eps)
    c = np.maximum(c / c.sum(), eps)
    return float(np.sum((c - r) * np.log(c / r)))


def _finite(values: Sequence[float] | np.ndarray, label: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError(f"{label} has no finite values")
    return x


def quantile_edges(reference: Sequence[float] | np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """The sorted unique edges ``[min, q_1/B, ..., q_(B-1)/B, max]`` of the reference (see module)."""
    if not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    r = _finite(reference, "reference")
    return np.unique(np.quantile(r, np.linspace(0.0, 1.0, bins + 1)))


def bin_counts(values: Sequence[float] | np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of finite ``values`` in the bins of :func:`quantile_edges` (``len(edges) + 1`` of them)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    # right-closed bins (e_i, e_(i+1)]; the first edge (the minimum) is closed on both sides
    # (a single edge -- a constant reference -- is its own point bin [v, v] between two tails)
    n_bins = len(edges) + 1 if len(edges) > 1 else 3
    idx = np.searchsorted(edges, x, side="left")
    idx[x == edges[0]] = 1
    idx[x > edges[-1]] = n_bins - 1
    return np.bincount(idx, minlength=n_bins)


def psi(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, *,
        bins: int = PSI_BINS, eps: float = PSI_EPS) -> float:
    """PSI of a continuous feature over the reference's quantile bins (non-finite values dropped)."""
    edges = quantile_edges(reference, bins)
    cur = _finite(current, "current")
    return psi_from_proportions(bin_counts(reference, edges), bin_counts(cur, edges), eps=eps)


def psi_categorical(reference: Mapping[object, float], current: Mapping[object, float], *,
                    eps: float = PSI_EPS) -> float:
    """PSI of two categorical distributions given as ``{category: count}`` over the union of keys."""
    keys = sorted(set(reference) | set(current), key=str)
    if not keys:
        raise ValueError("reference and current have no categories")
    return psi_from_proportions([reference.get(k, 0) for k in keys], [current.get(k, 0) for k in keys], eps=eps)


def ks(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Two-sided two-sample KS ``(statistic, p-value)`` of the finite values (scipy ``ks_2samp``)."""
    from scipy import stats as _st  # here, not at import: every cvray command's config loads this module

    res = _st.ks_2samp(_finite(reference, "reference"), _finite(current, "current"))
    return float(res.statistic), float(res.pvalue)


def psi_noise_floor(n_reference: int, n_current: int, bins: int = PSI_BINS) -> float:
    """Expected PSI with no shift, ``(B - 1)(1/n + 1/m)`` (see module docstring)."""
    if n_reference < 1 or n_current < 1:
        raise ValueError(f"sample sizes must be >= 1, got {n_reference} and {n_current}")
    return (bins - 1) * (1.0 / n_reference + 1.0 / n_current)
