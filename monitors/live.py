"""Change counters in Redis that open pages poll (growalert/pages/live.py): one per owner (the
dashboard), one per monitor (its page) and one per owner for changes every monitor page shows.

Whatever changes what an owner's pages show — a status change or an incident committed by the
evaluation pipeline, a monitor created, edited, paused or deleted — increments the owner's
counter and the changed monitors' (or, for a change of no one monitor, the owner's every-page
counter) after its transaction commits. A page polls with the counter it last saw as its
``ETag``; while the counter has not moved the answer is a 304 read from Redis alone, so an
unchanged poll costs one ``GET`` (bench/bench_live.py).

Redis being away never fails the writer: the increment is logged and skipped, and pages fall
back to their periodic full refresh (at most a minute late, static/js/live.js).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import redis
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

KEY_PREFIX = "growalert:live:"
# A counter nobody bumped for a month is dropped; a page that polls it then sees it move.
TTL_SECONDS = 30 * 86400

_client: redis.Redis | None = None
_client_lock = threading.Lock()
# How many times this process moved counters: a reader that keeps a counter for a moment
# (growalert/pages/live_wsgi.py) knows a change made here at once, not a moment later.
changes_made_here = 0


def _redis() -> redis.Redis:
    """One client per process (redis-py's pool is thread-safe), with short timeouts: a poll
    or a pipeline commit never waits long on a Redis that is away."""
    global _client
    with _client_lock:
        if _client is None:
            _client = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5
            )
        return _client


def key(owner_id: int) -> str:
    """The owner's counter: anything the owner's pages show (the dashboard polls it)."""
    return f"{KEY_PREFIX}{owner_id}"


def everything_key(owner_id: int) -> str:
    """The owner's counter of changes that every monitor page shows (a silence of all
    monitors, for one)."""
    return f"{KEY_PREFIX}{owner_id}:all"


def monitor_key(monitor_id: int) -> str:
    """One monitor's counter: what its own page shows."""
    return f"{KEY_PREFIX}m{monitor_id}"


def changed(owner_ids: Iterable[int], monitor_ids: Iterable[int] | None = None) -> None:
    """Moves the counters of ``owner_ids`` on (one round trip for all of them), and those of
    ``monitor_ids`` — or, when a change is not one monitor's (``None``), every monitor page's
    of those owners. A monitor page then renders again only for its own monitor's changes."""
    global changes_made_here
    owners = sorted(set(owner_ids))
    if not owners:
        return
    keys = [key(o) for o in owners]
    if monitor_ids is None:
        keys += [everything_key(o) for o in owners]
    else:
        keys += [monitor_key(m) for m in sorted(set(monitor_ids))]
    try:
        with _redis().pipeline(transaction=False) as pipe:
            for name in keys:
                pipe.incr(name)
                pipe.expire(name, TTL_SECONDS)
            pipe.execute()
    except redis.RedisError as exc:
        logger.warning("live pages of owners %s not told of a change: %s", owners, exc)
    finally:
        changes_made_here += 1  # after the increments: a reader then reads the new counters


def changed_on_commit(owner_ids: Iterable[int], monitor_ids: Iterable[int] | None = None) -> None:
    """:func:`changed` once the current transaction commits (at once outside one)."""
    owners = set(owner_ids)
    monitors = None if monitor_ids is None else set(monitor_ids)
    if owners:
        transaction.on_commit(lambda: changed(owners, monitors))


def version(owner_id: int) -> int | None:
    """The owner's counter (0 before any change), or None when Redis cannot be read."""
    try:
        value = _redis().get(key(owner_id))
    except redis.RedisError as exc:
        logger.info("live version of owner %s unreadable: %s", owner_id, exc)
        return None
    return int(value) if value is not None else 0


def monitor_version(owner_id: int, monitor_id: int) -> str | None:
    """A monitor page's version: the owner's every-page counter and the monitor's own
    ("3.17"), or None when Redis cannot be read."""
    try:
        found = _redis().mget([everything_key(owner_id), monitor_key(monitor_id)])
    except redis.RedisError as exc:
        logger.info("live version of monitor %s unreadable: %s", monitor_id, exc)
        return None
    everything, own = (int(v) if v is not None else 0 for v in found)
    return f"{everything}.{own}"
