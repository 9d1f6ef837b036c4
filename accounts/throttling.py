"""API rate limits in Redis, shared by every worker and host.

A fixed window per user: one pipelined round trip (create the window's counter with its
expiry if absent, increment it, read its remaining time), atomic in Redis, so counts hold
across web workers and hosts where DRF's own throttles (a read then a write of a list of
timestamps) can lose hits under concurrency. Over the limit DRF answers 429 with Retry-After
(the window's remaining seconds). If Redis cannot be reached the request is let through, and
Redis is not asked again for ``RETRY_REDIS_AFTER`` seconds (so requests do not each wait for a
connection timeout): the limit protects the service, it must not take it down.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import TYPE_CHECKING

import redis
from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:  # rest_framework.views loads the auth and throttle classes: no cycle
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

KEY_PREFIX = "growalert:throttle:"
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RETRY_REDIS_AFTER = 10.0
_redis_down_until = 0.0


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """``"1200/min"`` -> (1200, 60); empty or ``"off"`` -> None (no limit)."""
    if not rate or rate.strip().lower() in ("off", "none", "0"):
        return None
    count, _, period = rate.partition("/")
    unit = period.strip().lower()[:1]
    if not count.strip().isdigit() or unit not in PERIODS:
        raise ValueError(f"rate {rate!r}: use <count>/<sec|min|hour|day>")
    return int(count), PERIODS[unit]


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


def hit(key: str, window: int) -> tuple[int, float]:
    """Counts one hit in ``key``'s current window: (hits so far, seconds left in the window)."""
    pipe = _redis().pipeline(transaction=True)
    pipe.set(KEY_PREFIX + key, 0, ex=window, nx=True)
    pipe.incr(KEY_PREFIX + key)
    pipe.pttl(KEY_PREFIX + key)
    _, count, ttl_ms = pipe.execute()
    return int(count), max(int(ttl_ms), 0) / 1000


def reset(key: str) -> None:
    _redis().delete(KEY_PREFIX + key)


class UserRateThrottle(BaseThrottle):
    """``settings.API_RATE_LIMIT`` per authenticated user, whichever token or session is used
    (so more tokens do not mean more requests). Anonymous requests are not counted here."""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        rate = parse_rate(settings.API_RATE_LIMIT)
        if rate is None or not request.user or not request.user.is_authenticated:
            return True
        global _redis_down_until  # one flag per process
        if time.monotonic() < _redis_down_until:
            return True
        limit, window = rate
        try:
            count, left = hit(f"user:{request.user.pk}", window)
        except redis.RedisError as exc:
            logger.warning("API rate limit not applied: Redis unreachable (%s)", exc)
            _redis_down_until = time.monotonic() + RETRY_REDIS_AFTER
            return True
        if count <= limit:
            return True
        self.retry_after = float(max(1, math.ceil(left)))
        return False

    def wait(self) -> float | None:
        return self.retry_after
