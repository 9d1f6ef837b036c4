"""Queueing a delivery: the one way every caller (the pipeline, retries, deferrals, dead
letters, the sweeper, a channel's failing streak, the benches) hands outbox rows to the
delivery workers, and how long a retry waits.

The delivery task is looked up by name in the Celery app's registry (``MonitorsConfig.ready``
imports the task modules in every process): the task calls delivery, which queues its own
retries through here, so this module sits below both and imports neither. A lost message is
harmless: the sweeper picks up pending rows.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence

from celery import Task, current_app
from django.conf import settings
from django.db import transaction

DELIVER_TASK = "monitors.notify.tasks.deliver_notification"
BURST_TASK = "monitors.notify.tasks.deliver_notifications"
BURST_SIZE = 100  # rows per burst task (its sends run side by side: monitors/notify/burst.py)


def deliver_task() -> Task:  # type: ignore[type-arg]
    return current_app.tasks[DELIVER_TASK]


def burst_task() -> Task:  # type: ignore[type-arg]
    return current_app.tasks[BURST_TASK]


def connect() -> None:
    """Pays a process's first publish now (``notify.warmup``): it took ~25 ms in the arrival
    evaluator, behind the first round's notifications (the Celery app finalized, its result
    backend's class looked up through the installed packages' entry points, the broker
    connection opened). Raises ``kombu.exceptions.OperationalError`` when the broker cannot
    be reached (after one try)."""
    current_app.tasks  # noqa: B018 (finalizes the app: every task bound)
    current_app.backend  # noqa: B018 (the result backend, looked up once)
    with current_app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=1)


def enqueue(notification_ids: Sequence[uuid.UUID | str], *, countdown: float | None = None) -> None:
    """Queues the outbox rows for delivery, now (or after ``countdown`` seconds): one task for
    a single row, one burst task per ``BURST_SIZE`` rows written together (they leave
    together)."""
    ids = [str(i) for i in notification_ids]
    if len(ids) == 1:
        _send(deliver_task(), ids[0], countdown)
        return
    for start in range(0, len(ids), BURST_SIZE):
        _send(burst_task(), ids[start : start + BURST_SIZE], countdown)


def _send(task: Task, arg: str | list[str], countdown: float | None) -> None:  # type: ignore[type-arg]
    if countdown is None:
        task.apply_async(args=(arg,))
    else:
        task.apply_async(args=(arg,), countdown=countdown)


def enqueue_on_commit(
    notification_ids: Sequence[uuid.UUID | str], *, countdown: float | None = None
) -> None:
    """Queues them once the transaction that wrote (or re-armed) the rows commits."""
    ids = list(notification_ids)
    transaction.on_commit(lambda: enqueue(ids, countdown=countdown))


def backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` + 1: exponential with jitter (half fixed, half
    random), capped."""
    base: float = settings.NOTIFY_RETRY_BASE_SECONDS * 2.0 ** min(max(0, attempt - 1), 60)
    capped = min(base, float(settings.NOTIFY_RETRY_MAX_SECONDS))
    return capped / 2 + random.uniform(0, capped / 2)
