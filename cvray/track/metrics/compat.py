"""numpy-2 compatibility shims for the MOT metric libraries (no monkey-patching).

motmetrics 1.4 calls ``np.asfarray`` (removed in numpy 2.0) inside
``motmetrics.distances.iou_matrix``; every other function of motmetrics we use works on numpy 2.
Instead of re-adding the alias to the ``numpy`` module (a process-global patch that would leak into
every Ray worker) we provide :func:`iou_matrix` with the same contract that keeps using
motmetrics' own ``boxiou`` kernel. trackeval 1.3's ``HOTA``/``CLEAR``/``Identity`` classes use no
removed alias; :func:`removed_numpy_aliases` lets a test prove that for the installed version, so
an upgrade that brings one back fails loudly instead of at evaluation time.
"""
from __future__ import annotations

import inspect
import re
from types import ModuleType

import numpy as np
from motmetrics.distances import boxiou

__all__ = ["asfarray", "iou_matrix", "removed_numpy_aliases", "REMOVED_ALIASES"]

#: Names that numpy 2 removed and older MOT tooling still uses.
REMOVED_ALIASES = ("asfarray", "float", "int", "bool", "object", "float_", "complex_", "NaN", "Inf")


def asfarray(a, dtype=np.float64) -> np.ndarray:
    """``np.asfarray`` as numpy < 2 defined it: ``asarray`` with a floating dtype."""
    if not np.issubdtype(dtype, np.inexact):
        dtype = np.float64
    return np.asarray(a, dtype=dtype)


def iou_matrix(objs, hyps, max_iou: float = 1.0) -> np.ndarray:
    """``motmetrics.distances.iou_matrix`` for numpy 2: IoU *distance* ``1 - IoU`` of xywh boxes.

    Entries whose distance exceeds ``max_iou`` are NaN (motmetrics' "do not pair"). Returns a
    ``(len(objs), len(hyps))`` array; unlike motmetrics it keeps that shape when one side is empty
    (motmetrics returns ``(0, 0)``, which ``MOTAccumulator.update`` accepts either way).
    """
    objs = asfarray(objs).reshape(-1, 4)
    hyps = asfarray(hyps).reshape(-1, 4)
    if len(objs) == 0 or len(hyps) == 0:
        return np.empty((len(objs), len(hyps)))
    dist = 1.0 - boxiou(objs[:, None], hyps[None, :])
    return np.where(dist > max_iou, np.nan, dist)


def removed_numpy_aliases(module: ModuleType) -> list[str]:
    """Return ``np.<alias>`` uses of numpy-2-removed names in ``module``'s source (sorted, unique)."""
    src = inspect.getsource(module)
    return sorted(name for name in REMOVED_ALIASES if re.search(rf"\bnp\.{re.escape(name)}\b", src))
