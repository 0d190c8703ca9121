"""Drop known-noise lines that native code writes straight to file descriptor 2.

Ray Data creates every actor pool (``map_batches`` with an ``ActorPoolStrategy``, as
``cvray predict`` does) with ``max_restarts=-1`` and its own context and transform passed as
object refs, so Ray's C++ core worker logs, at ERROR level, on every predict::

    core_worker.cc:...: Actor with class name: 'MapWorker(...)' ... has constructor arguments in
    the object store and max_restarts > 0. If the arguments in the object store go out of scope ...

It is about Ray Data's internals (ray-project/ray#53727), not the user's job, and no Ray setting
silences it short of hiding every C++ error (``RAY_BACKEND_LOG_LEVEL=fatal``) or turning actor
fault tolerance off. C++ writes bypass Python's ``sys.stderr``, so :func:`drop_stderr_lines`
swaps fd 2 for a pipe while it is active; a thread forwards every write unchanged except lines
holding one of the markers, then fd 2 is restored after everything written before the exit has
been forwarded. With ``-v`` (cvray logging at INFO) nothing is filtered.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import Iterator

__all__ = ["RAY_NOISE", "drop_stderr_lines", "filter_chunk"]

RAY_NOISE: tuple[bytes, ...] = (b"has constructor arguments in the object store and max_restarts > 0",)
_SENTINEL = b"\x00cvray-stderr-filter-end\x00"


def filter_chunk(chunk: bytes, markers: tuple[bytes, ...]) -> bytes:
    """``chunk`` without the lines (newline included) that contain a marker."""
    if not any(m in chunk for m in markers):
        return chunk
    parts = chunk.split(b"\n")
    tail = parts.pop()  # text after the last newline (b"" when the chunk ends with one)
    kept = [p + b"\n" for p in parts if not any(m in p for m in markers)]
    if tail and not any(m in tail for m in markers):
        kept.append(tail)
    return b"".join(kept)


@contextlib.contextmanager
def drop_stderr_lines(markers: tuple[bytes, ...] = RAY_NOISE, *, enabled: bool | None = None) -> Iterator[None]:
    """Filter fd 2 for the duration (``enabled=None``: unless cvray logs at INFO, i.e. ``-v``)."""
    if enabled is None:
        enabled = logging.getLogger("cvray").getEffectiveLevel() > logging.INFO
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture, no real stderr: leave it
        enabled = False
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    r, w = os.pipe()
    os.dup2(w, fd)
    os.close(w)
    done = threading.Event()

    def out(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(saved, view):]

    def pump() -> None:
        pending = b""
        while True:
            data = os.read(r, 65536)
            if not data:
                break
            data = pending + data
            pending = b""
            if _SENTINEL in data:
                before, _, after = data.partition(_SENTINEL)
                out(filter_chunk(before, markers))
                done.set()
                data = after
                if not data:
                    continue
            # keep a possible partial sentinel for the next read
            cut = max((k for k in range(1, len(_SENTINEL)) if data.endswith(_SENTINEL[:k])), default=0)
            if cut:
                data, pending = data[:-cut], data[-cut:]
            out(filter_chunk(data, markers))
        if pending:
            out(pending)
        os.close(r)
        os.close(saved)  # the pump owns it: a process started inside the window may still write

    threading.Thread(target=pump, name="cvray-stderr-filter", daemon=True).start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.write(fd, _SENTINEL)
        done.wait(timeout=5.0)
        os.dup2(saved, fd)  # closes this process's write end of the pipe: the pump sees EOF
