"""Celery heartbeat: beat schedules ``record_heartbeat``, a worker runs it, and diagnostics
report how long ago that last happened (a stale heartbeat means beat or every worker is down)."""

from __future__ import annotations

import time

import redis
from django.conf import settings

KEY = "growalert:heartbeat"


def _client() -> redis.Redis:
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )


def record(now: float | None = None) -> None:
    _client().set(KEY, repr(time.time() if now is None else now))


def age_seconds(now: float | None = None) -> float | None:
    """Seconds since the last heartbeat, or None if none was ever recorded or Redis is down."""
    try:
        raw = _client().get(KEY)
    except redis.RedisError:
        return None
    if raw is None:
        return None
    return round((time.time() if now is None else now) - float(raw), 1)
