"""Delivery tasks: thin wrappers over monitors.notify.delivery."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.db import close_old_connections, connection
from django.utils import timezone

from monitors.models import Notification
from monitors.notify import burst, delivery, escalation, queue

LOST_AFTER = timedelta(seconds=15)  # a pending row this old was never picked up
WAKE_EXPIRES = timedelta(seconds=5)  # a wake this late is dropped: beat's next tick has run


def _fresh_connection() -> None:
    """Django's per-request rule (CONN_MAX_AGE, health checks, drop broken connections). With
    CELERY_DB_REUSE_MAX set, Celery stops reconnecting around every task (4 ms and a Postgres
    backend per task), so the task applies the rule itself. Never inside a transaction (an
    eager call in a test)."""
    if not connection.in_atomic_block:
        close_old_connections()


# The soft limit leaves the send up to 30 s and recording its outcome through a Postgres
# restart up to half the lease (15 s); past the hard limit the worker process is killed, its
# lease stops being renewed and the row is sent again once it expires.
@shared_task(ignore_result=True, soft_time_limit=45, time_limit=60)
def deliver_notification(notification_id: str) -> str:
    """Delivers one outbox row; running twice is harmless (the claim lets one through)."""
    _fresh_connection()
    return delivery.deliver(notification_id)


# A burst's sends run side by side, NOTIFY_BURST_CONCURRENCY at a time: BURST_SIZE rows take
# about one send time, well within the limits (a row whose task is killed is sent again once its
# lease ends, like a single delivery's).
@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def deliver_notifications(notification_ids: list[str]) -> dict[str, int]:
    """Delivers a burst of outbox rows concurrently (``burst.deliver_burst``)."""
    _fresh_connection()
    return dict(burst.deliver_burst(notification_ids))


@shared_task(ignore_result=True, soft_time_limit=20, time_limit=30)
def deliver_due_notifications() -> int:
    """The sweeper (beat): re-enqueues rows whose task was lost or whose lease expired."""
    _fresh_connection()
    stale = timezone.now() - LOST_AFTER
    ids = list(
        Notification.objects.filter(delivery.deliverable_q(), next_attempt_at__lte=stale)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:1000]
    )
    queue.enqueue(ids)
    return len(ids)


@shared_task(ignore_result=True, soft_time_limit=20, time_limit=30)
def escalate_due_incidents() -> int:
    """Every second (beat): writes the due rows of incidents that should escalate, takes every
    due escalation step (monitors.notify.escalation), and queues a run at each due time of
    the coming second and a half, so steps are taken on time. Safe to run twice at once."""
    _fresh_connection()
    tick = escalation.tick()
    for at in tick.wakes:
        take_due_escalations.apply_async(eta=at, expires=at + WAKE_EXPIRES)
    return tick.taken


@shared_task(ignore_result=True, soft_time_limit=20, time_limit=30)
def take_due_escalations() -> int:
    """At a step's due time (queued by the tick): takes every due step."""
    _fresh_connection()
    return escalation.take_due()
