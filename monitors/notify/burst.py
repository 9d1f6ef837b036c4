"""A burst of outbox rows delivered together: one task, its sends concurrent in the process.

A round of alerts (a whole greenhouse losing power) writes many outbox rows in one
transaction. Queued one task each, they trickled out over seconds behind each other; queued as
one burst, they are sent by a thread pool shared by the delivery process
(``NOTIFY_BURST_CONCURRENCY`` threads), so they leave within one send time of each other.
Each row still goes through :func:`delivery.deliver`: its own claim (exactly once), the
receiver's concurrency limit and circuit breaker, its own attempt record and retry. A pool
thread keeps its database connection from one send to the next, under Django's per-request
rule (``close_old_connections``) as a task does.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connection

from monitors.notify import delivery

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def _shared_pool() -> ThreadPoolExecutor:
    """The process's pool, made on first use (after a prefork worker forked its child)."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(
                max_workers=settings.NOTIFY_BURST_CONCURRENCY, thread_name_prefix="burst"
            )
            _pool_pid = os.getpid()
        return _pool


def deliver_burst(notification_ids: Sequence[uuid.UUID | str]) -> Counter[str]:
    """Delivers the rows concurrently; returns how many ended how (``delivery.deliver``'s
    words, ``error`` for one that raised: the sweeper picks it up again)."""
    ids = [str(i) for i in notification_ids]
    if len(ids) < 2 or connection.in_atomic_block:
        # one row, or run eagerly inside a transaction (a test's): only this thread's
        # connection sees the rows
        return Counter(delivery.deliver(i) for i in ids)
    return Counter(_shared_pool().map(_deliver_one, ids))


def close_pool() -> None:
    """Stops the process's pool (its threads end and their connections with them): a test's
    teardown, before its database goes away. The next burst makes a new one."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)
        gc.collect()  # a finished thread's connection is closed when it is collected


def _deliver_one(notification_id: str) -> str:
    close_old_connections()
    try:
        return delivery.deliver(notification_id)
    except Exception:
        logger.exception("delivering notification %s failed", notification_id)
        return "error"
