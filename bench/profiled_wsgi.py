"""growalert.wsgi's application with a CPU-time profile of every request, for the benches'
``--profile`` (bench_ingest_cpu.py, bench_live.py, bench_live_poll.py), served by the web server
in its place: ``common.start_web_server(..., app="bench.profiled_wsgi:application")`` (granian
imports it from the checkout's root, where ``bench`` is a namespace package).
``$BENCH_PROFILE_APP`` (``module:callable``) profiles another application
(``bench_live_poll.py --floor --profile``: bench/live_poll_floor.py).

Each of a worker's WSGI threads profiles the calls it makes into the application (cProfile
timed with ``time.thread_time``: a thread waiting for Redis or for the GIL is not counted as
working): the call itself and, when the answer is not a list, the iteration over it and its
``close()`` (Django's request_finished: connections given back, the span's end). When the worker
exits, its threads' profiles are merged and written to ``$BENCH_PROFILE_DIR/worker-<pid>.prof``.

Only the WSGI application is profiled: granian's own HTTP handling (accepting, parsing,
keep-alive, writing the answer) runs in Rust, outside any Python profile, so it is in no
profile printed (the earlier Python server's was). Only for benches: profiling slows every
call.

granian's workers are ``multiprocessing`` processes, forked: on SIGTERM (the master passes its
own on) a worker stops serving and its process ends with ``os._exit``, after running
``multiprocessing``'s finalizers but not ``atexit``'s; the profile is written by such a
finalizer (``multiprocessing.util.Finalize``, registered when a worker imports this module).
"""

from __future__ import annotations

import cProfile
import importlib
import os
import pstats
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing import util
from pathlib import Path
from typing import Any

_module, _name = os.environ.get("BENCH_PROFILE_APP", "growalert.wsgi:application").split(":")
_application = getattr(importlib.import_module(_module), _name)

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_local = threading.local()


def _profile() -> cProfile.Profile:
    """This thread's profile (cProfile profiles one thread: each thread needs its own)."""
    profile: cProfile.Profile | None = getattr(_local, "profile", None)
    if profile is None:
        profile = _local.profile = cProfile.Profile(time.thread_time)
        with _lock:
            _profiles.append(profile)
    return profile


class _Profiled:
    """An answer that is iterated and closed under the profile of the thread doing it."""

    def __init__(self, inner: Iterable[bytes]) -> None:
        self.inner = inner
        self.chunks: Iterator[bytes] | None = None

    def __iter__(self) -> _Profiled:
        return self

    def __next__(self) -> bytes:
        if self.chunks is None:
            self.chunks = _profile().runcall(iter, self.inner)
        return _profile().runcall(next, self.chunks)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            _profile().runcall(close)


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    answer = _profile().runcall(_application, environ, start_response)
    # A list is sent as it is (granian joins it, nothing more of ours runs); anything else is
    # iterated and closed by granian, which is the application's work too.
    return answer if isinstance(answer, list) else _Profiled(answer)


def dump() -> None:
    """The worker's threads' profiles merged, to ``$BENCH_PROFILE_DIR/worker-<pid>.prof``."""
    with _lock:
        profiles = [p for p in _profiles if p.getstats()]
    if not profiles:
        return
    stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        stats.add(profile)
    stats.dump_stats(str(Path(os.environ["BENCH_PROFILE_DIR"]) / f"worker-{os.getpid()}.prof"))


util.Finalize(None, dump, exitpriority=10)
