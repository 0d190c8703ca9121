"""Progress on long commands: a bar on a terminal, plain periodic log lines otherwise.

Workflows never print: they take an ``on_progress(done, total, **info)`` callback, and the CLI
passes a :class:`Progress` (which is that callback). On a terminal (stderr is a TTY) it draws a
tqdm bar with the rate and ETA; when stderr is a file or a pipe (a Ray job's log, CI) it writes
one plain line every ``interval`` seconds and one at the end::

    cvray train: 120/300 it (40%), 2.10 it/s, ETA 1m26s, loss=0.8312

Everything goes to stderr, so ``--json`` output on stdout stays one clean object.
"""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress", "format_eta"]


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class Progress:
    """``Progress(desc, unit, total)``; call it as ``progress(done, total=None, **info)``.

    ``info`` (e.g. ``loss=0.83``, ``best=0.41``) is shown after the rate. ``tty`` forces the
    mode (default: ``stream.isatty()``); ``disable`` silences it (``--json`` keeps it, on stderr).
    """

    def __init__(self, desc: str, unit: str = "it", total: int | None = None, *,
                 stream: TextIO | None = None, interval: float = 10.0, tty: bool | None = None,
                 disable: bool = False, clock=time.monotonic):
        self.desc, self.unit, self.total = desc, unit, total
        self.stream = stream if stream is not None else sys.stderr
        self.interval, self.disable, self.clock = float(interval), disable, clock
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.done = 0
        self.info: dict[str, Any] = {}
        self._start = clock()
        self._first: tuple[float, int] | None = None  # (time, done) of the first update: rate base
        self._last_line = None
        self._last_done: int | None = None
        self._bar = None
        self.lines = 0

    # -- the callback ---------------------------------------------------------------------------
    def __call__(self, done: int, total: int | None = None, **info: Any) -> None:
        if self.disable:
            return
        now = self.clock()
        if self._first is None:
            self._first = (now, int(done))
        self.done = int(done)
        if total is not None:
            self.total = int(total)
        self.info.update({k: v for k, v in info.items() if v is not None})
        if self.tty:
            self._draw_bar()
        elif self._last_line is None or now - self._last_line >= self.interval:
            self._line(now)

    def rate(self, now: float | None = None) -> float | None:
        """Units per second since the first update (excludes start-up before the first unit)."""
        now = self.clock() if now is None else now
        if self._first is None:
            return None
        t0, d0 = self._first
        if now - t0 <= 0 or self.done <= d0:
            return None
        return (self.done - d0) / (now - t0)

    def eta(self, now: float | None = None) -> float | None:
        r = self.rate(now)
        if r is None or not self.total:
            return None
        return max(self.total - self.done, 0) / r

    def text(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        parts = [f"{self.done}/{self.total} {self.unit}" if self.total else f"{self.done} {self.unit}"]
        if self.total:
            parts[0] += f" ({100.0 * self.done / self.total:.0f}%)"
        r = self.rate(now)
        if r is not None:
            parts.append(f"{r:.2f} {self.unit}/s")
        if self.total:
            parts.append(f"ETA {format_eta(0 if self.done >= self.total else self.eta(now))}")
        parts += [f"{k}={_fmt(v)}" for k, v in self.info.items()]
        return ", ".join(parts)

    def _line(self, now: float) -> None:
        self._last_line, self._last_done = now, self.done
        self.stream.write(f"{self.desc}: {self.text(now)}\n")
        self.stream.flush()
        self.lines += 1

    def _draw_bar(self) -> None:
        from tqdm.auto import tqdm

        if self._bar is None:
            self._bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, file=self.stream,
                             leave=False, dynamic_ncols=True)
        self._bar.total = self.total
        self._bar.n = self.done
        if self.info:
            self._bar.set_postfix_str(", ".join(f"{k}={_fmt(v)}" for k, v in self.info.items()),
                                      refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        """End the bar; in log mode write the final line (if anything was reported)."""
        if self.disable:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif not self.tty and self._first is not None and self._last_done != self.done:
            self._line(self.clock())

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
