"""Arrival times for readings sent without a timestamp, never given twice.

InfluxDB keeps one point per series and timestamp: two readings of one device stamped with the
same nanosecond are one point, the second overwriting the first. The clock alone does not
prevent that: it advances in steps of about 10 ns here, and one device posting from several
connections (a gateway, a busy simulator) can reach two threads or two web processes within
one step. ``bench/bench_ingest.py``'s single readings (one device, 8 connections) once came out
1 short of 38,961 in InfluxDB, which two readings stamped alike explain.

So a request's rows are stamped ``start + i * STEP``, where ``start`` is

- on this process's lane: ``start % STEP`` is the process's lane (its pid modulo ``STEP``), so
  processes on different lanes never give the same time, whatever their clocks say;
- after every time this process gave before (a lock, and the end of the last block kept):
  threads of one process never give the same time either.

Two processes on one lane (pids equal modulo 16, e.g. a 17th worker) can still meet within one
block of ``STEP`` ns, as any two did before. The shift is at most a few ns per reading plus
``STEP`` per row of a request: nothing a reading's time can show.
"""

from __future__ import annotations

import os
import threading
import time

STEP = 16  # ns between the rows of one request, and the number of lanes

_lock = threading.Lock()
_lane = os.getpid() % STEP
_next = 0  # the first time this process may still give


def _after_fork() -> None:
    global _lane, _next, _lock
    _lane, _next, _lock = os.getpid() % STEP, 0, threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


def block(rows: int) -> int:
    """The start of ``rows`` arrival times (``start + i * STEP`` for i < rows), none of them
    given before by this process nor, on another lane, by any other; about ``time.time_ns()``."""
    global _next
    now = time.time_ns()
    start = now - now % STEP + _lane
    with _lock:
        if start < _next:
            start = _next
        _next = start + max(rows, 1) * STEP
    return start
