"""The fd-2 filter that drops Ray's C++ line about Ray Data's actor constructor refs.

Real file descriptors (a subprocess whose stderr is a pipe) and a real Ray Data actor pool: the
line is there without the filter and gone with it, and every other byte still comes through.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from cvray.runs.stderr_filter import RAY_NOISE, filter_chunk

REPO = Path(__file__).resolve().parents[1]
MARKER = RAY_NOISE[0].decode()


def test_filter_chunk_keeps_everything_else():
    noise = b"[E core_worker.cc:1] Actor 'X' " + RAY_NOISE[0] + b". If the arguments ...\n"
    assert filter_chunk(b"a\n" + noise + b"b\n", RAY_NOISE) == b"a\nb\n"
    assert filter_chunk(b"\rprogress 10%", RAY_NOISE) == b"\rprogress 10%"  # no newline: untouched
    assert filter_chunk(noise.rstrip(b"\n"), RAY_NOISE) == b""
    assert filter_chunk(b"x\n", RAY_NOISE) == b"x\n"


def _run(code: str, text: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=text,
                          timeout=240, cwd=REPO, env=env)


def test_native_writes_are_filtered_and_forwarded_in_order():
    p = _run(f"""
        import os, sys, logging
        from cvray.runs.stderr_filter import drop_stderr_lines
        logging.getLogger("cvray").setLevel(logging.WARNING)
        print("before", file=sys.stderr, flush=True)
        with drop_stderr_lines():
            os.write(2, b"one\\n[E x.cc] {MARKER}. more\\ntwo\\n")
            os.write(2, b"\\rbar 50%")
            print("three", file=sys.stderr)
        print("after", file=sys.stderr, flush=True)
        with drop_stderr_lines(enabled=False):
            os.write(2, b"{MARKER} (kept: filter off, as with -v)\\n")
    """, text=False)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert err.split("\n")[:5] == ["before", "one", "two", "\rbar 50%three", "after"]
    assert err.count(MARKER) == 1 and "(kept: filter off" in err


def test_ray_data_actor_pool_line_is_dropped():
    """Ray Data prints the line for every actor pool; inside the filter it does not reach stderr."""
    p = _run("""
        import logging, sys, ray
        from cvray.runs.stderr_filter import drop_stderr_lines
        logging.getLogger("cvray").setLevel(logging.WARNING)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)

        class Ident:
            def __init__(self, k):
                self.k = k

            def __call__(self, batch):
                return batch

        def pool():
            ds = ray.data.range(4).map_batches(Ident, fn_constructor_args=(1,), batch_size=2,
                                               compute=ray.data.ActorPoolStrategy(size=1))
            return len(ds.take_all())

        n1 = pool()
        print("=== filtered", file=sys.stderr, flush=True)
        with drop_stderr_lines():
            n2 = pool()
        print("=== done", n1, n2, file=sys.stderr, flush=True)
        ray.shutdown()
    """)
    assert p.returncode == 0, p.stderr[-3000:]
    before, _, after = p.stderr.partition("=== filtered")
    assert "=== done 4 4" in after
    assert MARKER in before, before[-2000:]  # Ray does print it (else this test proves nothing)
    assert MARKER not in after, after[-2000:]
