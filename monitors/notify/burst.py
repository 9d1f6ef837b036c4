"""A burst of outbox rows delivered together: one task, its sends concurrent in the process.

A round of alerts (a whole greenhouse losing power) writes many outbox rows in one
transaction. Queued one task each, they trickled out over seconds behind each other; queued as
one burst, they leave within one send time of each other:

1. the task claims every row of the burst in one statement (``delivery.claim_many``: each row
   still exactly once; a second task for the same burst claims none of them);
2. the sends run side by side in a thread pool shared by the delivery process
   (``NOTIFY_BURST_CONCURRENCY`` threads), each within its receiver's concurrency limit and
   circuit breaker; a send touches the network and Redis only, so the pool's threads hold no
   database connection and a burst's sends do not wait for connections or for each other's
   writes;
3. the task records each outcome as its send ends (its attempt, retry, dead letter or
   deferral, on the task's own connection), while one lease keeper renews the leases of the
   rows still in flight.

Measured (docs/notifications.md): claimed, sent and recorded one row per pool thread, a burst
of 40 rows waited for 16 threads' claims and records: its last sends started 250-300 ms after
its first.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from django.conf import settings
from django.db import connection

from monitors.models import Notification
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
    words, ``error`` for one whose outcome could not be recorded: its lease ends and it is sent
    again, as after a killed worker)."""
    ids = [str(i) for i in notification_ids]
    if len(ids) < 2 or connection.in_atomic_block:
        # one row, or run eagerly inside a transaction (a test's): only this thread's
        # connection sees the rows
        return Counter(delivery.deliver(i) for i in ids)
    outcomes: Counter[str] = Counter()
    claimed = delivery.claim_many(ids)
    outcomes["skipped"] += len(ids) - len(claimed)
    sending = []
    for notification in claimed:
        with delivery.bound(notification):
            reason = delivery.withheld_reason(notification)
            if reason:
                outcomes[delivery.withhold(notification, reason)] += 1
            else:
                sending.append(notification)
    pool = _shared_pool()
    with delivery.LeaseKeeper(*sending) as keeper:
        running = {pool.submit(_send, n): n for n in sending}
        for future in as_completed(running):
            notification = running[future]
            keeper.release(notification)
            outcomes[_finish(notification, future)] += 1
    return +outcomes  # without the zero counts


def close_pool() -> None:
    """Stops the process's pool (its threads end): a test's teardown. The next burst makes a
    new one."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)


def _send(notification: Notification) -> delivery.Attempt:
    with delivery.bound(notification):  # context does not follow a task into the pool
        return delivery.send(notification)


def _finish(notification: Notification, sending: Future[delivery.Attempt]) -> str:
    with delivery.bound(notification):
        try:
            return delivery.finish(notification, sending.result())
        except Exception:
            logger.exception("delivering notification %s failed", notification.pk)
            return "error"
