"""The dispatcher's tick, phase-aligned with the data it evaluates.

Data written every second lands at one instant of each second (a collector's flush, a device's
clock). Evaluated at the dispatcher's own instant, each new point waited for it: anywhere from
0 to 1 s, uniformly, before any evaluation could see it — at 1 s intervals, the largest share
of an alert's latency. So evaluation learns the instant: the times of the points it read
(InfluxDB answers ``last()`` with the point's time) give each source's sub-second phase, a
circular mean kept in Redis for ``PHASE_TTL`` seconds. The dispatcher still claims every second
as before (the claim, its guards and the schedule are unchanged) and hands a source's batches to
the workers with a countdown that makes them run ``DISPATCH_DATA_MARGIN_MS`` after the source's
next landing; a batch whose landing has just passed (within ``TOLERANCE_MS``) runs at once.

A source whose phase is unknown (new, Flux, no recent points, Redis away) is evaluated at once,
as before. Set ``DISPATCH_ALIGN_TO_DATA=false`` to switch the alignment off.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "growalert:data-phase:"
PHASE_TTL = 60  # seconds: a phase not confirmed for this long is forgotten
TOLERANCE_MS = 200  # a landing this recent is still fresh: evaluate now, not a second later
_PERIOD_MS = 1000  # the dispatcher's tick

_client: redis.Redis | None = None
_client_lock = threading.Lock()


def _redis() -> redis.Redis:
    global _client
    with _client_lock:
        if _client is None:
            _client = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5
            )
        return _client


def circular_phase(times_ms: Iterable[int]) -> int | None:
    """The mean sub-second phase (ms, 0..999) of the points' times, on the circle (990 ms and
    10 ms average to 0, not 500); None for no times or phases spread all around."""
    sin = cos = 0.0
    count = 0
    for at in times_ms:
        angle = 2 * math.pi * (at % _PERIOD_MS) / _PERIOD_MS
        sin, cos, count = sin + math.sin(angle), cos + math.cos(angle), count + 1
    if count == 0 or math.hypot(sin, cos) / count < 0.5:  # no common instant to align with
        return None
    return round(math.atan2(sin, cos) / (2 * math.pi) * _PERIOD_MS) % _PERIOD_MS


def record(source_id: int, times_ms: Iterable[int]) -> None:
    """Remembers the phase of a source's points (one Redis write; never raises)."""
    if not settings.DISPATCH_ALIGN_TO_DATA:
        return
    phase = circular_phase(times_ms)
    if phase is None:
        return
    try:
        _redis().set(f"{KEY_PREFIX}{source_id}", phase, ex=PHASE_TTL)
    except redis.RedisError as exc:
        logger.warning("could not record source %s's data phase: %s", source_id, exc)


def countdowns(source_ids: Iterable[int], *, now: float | None = None) -> dict[int, float]:
    """Seconds each source's batches should wait (one Redis read for all); sources without a
    known phase are left out (evaluated at once)."""
    ids = sorted(set(source_ids))
    if not settings.DISPATCH_ALIGN_TO_DATA or not ids:
        return {}
    try:
        phases = _redis().mget([f"{KEY_PREFIX}{pk}" for pk in ids])
    except redis.RedisError as exc:
        logger.warning("data phases unavailable, evaluating at once: %s", exc)
        return {}
    now_ms = (time.time() if now is None else now) * 1000
    found = {}
    for pk, phase in zip(ids, phases, strict=True):
        if phase is not None:
            found[pk] = wait_for(int(phase), now_ms) / 1000
    return found


def wait_for(phase_ms: int, now_ms: float) -> float:
    """Milliseconds from ``now_ms`` to the next landing at ``phase_ms`` plus the margin; 0 when
    that instant passed less than ``TOLERANCE_MS`` ago."""
    target = phase_ms + settings.DISPATCH_DATA_MARGIN_MS
    ahead = (target - now_ms) % _PERIOD_MS
    return 0.0 if ahead > _PERIOD_MS - TOLERANCE_MS else ahead
