"""Test-only fault injection for training (never library code): hard-kill a worker mid-run.

Ray Train ships hook objects to its worker processes by pickling them; a class is normally
pickled by reference to its module, and this module (``tests/faults.py``) need not be importable
on a worker (``tests/`` is on the driver's ``sys.path`` only). So it registers itself with Ray's
cloudpickle to be pickled by value: the class travels with the object.
"""
from __future__ import annotations

import logging
import os
import sys

from cvray.io import storage
from cvray.train.hooks import Hook

__all__ = ["FailOnce"]

log = logging.getLogger(__name__)


class FailOnce(Hook):
    """Hard-kill worker ``rank`` right after ``iteration``, once per marker.

    For checking that a cluster's setup really recovers (``FailureConfig``) -- the process
    dies with ``os._exit`` like an OOM-killed or pre-empted worker would, without cleanup. The
    marker (a local path or storage URI) is written first, so the restarted attempt runs through.
    """

    def __init__(self, iteration: int, marker: str, rank: int = 0):
        self.iteration, self.marker, self.rank = iteration, marker, rank

    def after_step(self, state, logs):
        if state.rank == self.rank and state.iteration == self.iteration and not storage.exists(self.marker):
            storage.write_bytes(self.marker, f"killed at iteration {state.iteration}".encode())
            log.warning("FailOnce: killing rank %d at iteration %d", state.rank, state.iteration)
            os._exit(1)


def _pickle_by_value() -> None:
    try:
        import ray.cloudpickle
    except ImportError:  # no Ray: nothing ships this hook to another process
        return
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


_pickle_by_value()
