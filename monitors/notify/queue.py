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


def deliver_task() -> Task:  # type: ignore[type-arg]
    return current_app.tasks[DELIVER_TASK]


def enqueue(notification_ids: Sequence[uuid.UUID | str], *, countdown: float | None = None) -> None:
    """Queues one delivery task per outbox row, now (or after ``countdown`` seconds)."""
    task = deliver_task()
    for notification_id in notification_ids:
        if countdown is None:
            task.apply_async(args=(str(notification_id),))
        else:
            task.apply_async(args=(str(notification_id),), countdown=countdown)


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
