"""One run context for every command: Ray (when the stage needs it) + the run + its manifest.

:func:`run_context` is the only way a command opens a run. It

1. starts Ray when asked (embedded local Ray, or joins ``--address`` / ``RAY_ADDRESS``),
2. creates the run and records the resolved config, seed, argv, package versions, accelerators,
   git SHA (:func:`cvray.runs.start_run`) and the Ray cluster's resources,
3. records the fingerprint of the dataset the stage reads (``dataset=``, see
   :mod:`cvray.data.fingerprint`),
4. commits ``manifest.json`` with the status when the block ends: ``succeeded``, ``failed`` (with
   the error) or ``interrupted`` (Ctrl-C / SIGINT, or SIGTERM), listing the tables written so far,
5. shuts down the Ray it started (after the manifest is committed).

Example::

    with run_context("track eval", cfg, argv=argv, dataset=fp) as run:
        run_track_eval(run, cfg.track, inputs)
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Callable, Iterator

from cvray.runs.run import Run, start_run

__all__ = ["Terminated", "run_context"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (``ray job stop``, ``kill``, a scheduler's pre-emption): the run ends ``interrupted``
    like Ctrl-C; the CLI exits 143 (128 + SIGTERM)."""


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt and SIGTERM :class:`Terminated` inside the block (whatever
    handler Ray installed), so the manifest is committed as ``interrupted`` with the tables written
    so far; the previous handlers are restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise Terminated("SIGTERM") if signum == signal.SIGTERM else KeyboardInterrupt

    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def run_context(command: str, cfg: Any, *, argv: list[str] | None = None, seed: int | None = None,
                ray: bool = False, address: str | None = None, run_id: str | None = None,
                dataset: dict[str, Any] | Callable[[], dict[str, Any]] | None = None) -> Iterator[Run]:
    """Yield the run of ``command`` (``cfg``: the resolved ExperimentConfig); see the module doc.

    ``dataset`` is a fingerprint dict (or a function computing it, called once the run exists, so
    a failure to read the dataset is recorded in the run) merged into the manifest's ``dataset``.
    """
    with contextlib.ExitStack() as stack:
        if ray:
            from cvray.raycluster import ray_context

            stack.enter_context(ray_context(cfg.ray, address))
        run = stack.enter_context(start_run(command, config=cfg, root=cfg.storage.root,
                                            seed=cfg.seed if seed is None else seed, argv=argv,
                                            run_id=run_id))
        stack.enter_context(_signals_interrupt())
        if ray:
            from cvray.raycluster import cluster_resources

            run.update(ray=cluster_resources())
        if dataset is not None:
            run.update(dataset=dataset() if callable(dataset) else dataset)
        yield run
