"""Training progress across processes (pure: storage + a thread, no Ray).

With ``ray=False`` the :class:`~cvray.train.hooks.ProgressHook` calls ``on_progress`` directly.
Ray Train runs the loop in other processes while ``TorchTrainer.fit()`` blocks the driver, so the
main worker's hook writes a :class:`ProgressFile` (``<run>/progress.json``: done, total, info, at
most every ``interval`` seconds and always at the last iteration) and the driver runs a
:class:`ProgressPoller`, a daemon thread that reads it while ``fit()`` runs and calls
``on_progress(done, total, **info)`` for every new state; ``stop()`` reads it a last time.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable

from cvray.io import storage

__all__ = ["ProgressFile", "ProgressPoller"]

log = logging.getLogger(__name__)


class ProgressFile:
    """``report(done, total, **info)`` -> a small JSON file, throttled to every ``interval`` s."""

    def __init__(self, uri: str, *, interval: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.uri, self.interval, self.clock = uri, float(interval), clock
        self._last: float | None = None
        self.writes = 0

    def __call__(self, done: int, total: int | None = None, **info: Any) -> None:
        now = self.clock()
        last_step = total is not None and done >= total
        if self._last is not None and now - self._last < self.interval and not last_step:
            return
        self._last = now
        try:
            storage.write_json(self.uri, {"done": int(done), "total": total, "info": info, "time": time.time()})
            self.writes += 1
        except storage.StorageError as exc:  # progress is best effort: never stop training for it
            log.warning("could not write training progress: %s", exc)


class ProgressPoller:
    """Poll a :class:`ProgressFile` in a daemon thread; ``on_progress`` for each new state.

    A file already there when the poller is made (an earlier attempt of a resumed run) is not
    reported until it changes.
    """

    def __init__(self, uri: str, on_progress: Callable[..., None], *, interval: float = 1.0):
        self.uri, self.on_progress, self.interval = uri, on_progress, float(interval)
        self._seen = self._read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cvray-train-progress", daemon=True)
        self.reports = 0

    def _read(self) -> bytes | None:
        try:
            return storage.read_bytes(self.uri)
        except (storage.StorageError, OSError):
            return None

    def poll(self) -> bool:
        """Report the file's state if it changed since the last poll; returns whether it did."""
        raw = self._read()
        if raw is None or raw == self._seen:
            return False
        self._seen = raw
        try:
            state = json.loads(raw)
        except ValueError:
            return False
        self.on_progress(int(state["done"]), state.get("total"), **(state.get("info") or {}))
        self.reports += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # a failing callback must not end the poller (or training)
                log.debug("progress callback failed", exc_info=True)

    def start(self) -> "ProgressPoller":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        try:
            self.poll()  # the last state, written just before the workers ended
        except Exception:
            log.debug("progress callback failed", exc_info=True)

    def __enter__(self) -> "ProgressPoller":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
