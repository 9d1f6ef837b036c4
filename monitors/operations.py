"""What the operator commands read and do (``manage.py overdue``, ``retry_deliveries``,
``resend_notification``, ``pause_account``/``resume_account``, ``monitor_evaluations``): the
selectors and services behind them, on the existing ones (dispatch, notify.services, services).
The commands only parse options and print."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from monitors import services
from monitors.models import Incident, Monitor, Notification, Schedule, Status
from monitors.notify import queue
from monitors.notify import selectors as notify_selectors
from monitors.notify import services as notify_services

MAX_ROWS = 10_000  # what one command lists or changes at most


# --- overdue ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Overdue:
    monitor_id: int
    owner: str
    name: str
    status: str
    late_seconds: float | None  # None: it has no schedule row at all
    reason: str


def _why(monitor: Monitor, gated: set[int], late: float | None) -> str:
    if late is None:
        return "no schedule row: repair_schedules (every minute) puts it back"
    if monitor.owner_id in gated:
        return "owner not served (billing: no active subscription): waits until payment"
    if not monitor.enabled:
        return "paused, but its schedule row was left behind"
    if monitor.status == Status.ERROR:
        return f"in error: {monitor.status_reason or 'no reason recorded'}"
    return "waiting for the dispatcher: is beat running, are evaluation workers consuming?"


def overdue(*, late_by: timedelta, limit: int = 100, now: datetime | None = None) -> list[Overdue]:
    """Monitors due more than ``late_by`` ago that the dispatcher has not claimed, and enabled
    monitors missing from its schedule, oldest first, each with the likely reason."""
    from billing.gating import gated_owner_ids

    now = now or timezone.now()
    limit = max(1, min(limit, MAX_ROWS))
    rows = list(
        Schedule.objects.filter(next_due_at__lte=now - late_by)
        .order_by("next_due_at")
        .values_list("monitor_id", "next_due_at")[:limit]
    )
    missing = list(
        Monitor.objects.filter(enabled=True, schedule__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    late: dict[int, float | None] = {pk: (now - due).total_seconds() for pk, due in rows}
    late.update(dict.fromkeys(missing))
    monitors = list(Monitor.objects.filter(pk__in=list(late)).select_related("owner"))
    gated = set(gated_owner_ids(now).filter(pk__in={m.owner_id for m in monitors}))
    found = [
        Overdue(
            m.pk, m.owner.get_username(), m.name, m.status, late[m.pk], _why(m, gated, late[m.pk])
        )
        for m in monitors
    ]
    found.sort(key=lambda o: -(o.late_seconds if o.late_seconds is not None else 1e18))
    return found[:limit]


# --- deliveries ------------------------------------------------------------------------------


@dataclass
class RetryReport:
    queued: int = 0
    refused: dict[int, str] | None = None  # channel id -> why


def failed_deliveries(
    *,
    owner: User | None = None,
    channel_id: int | None = None,
    monitor_id: int | None = None,
    since: datetime | None = None,
) -> Any:
    """Dead letters (deliveries that gave up; tests excluded), filtered."""
    rows = Notification.objects.filter(notify_selectors.DEAD)
    if owner is not None:
        rows = rows.filter(channel__owner_id=owner.pk)
    if channel_id is not None:
        rows = rows.filter(channel_id=channel_id)
    if monitor_id is not None:
        rows = rows.filter(monitor_id=monitor_id)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    return rows.order_by("created_at")


def retry_failed(rows: Any, *, limit: int) -> RetryReport:
    """Re-queues dead letters through notify.services.retry_dead_letters, channel by channel
    (a disabled or unverified channel is refused and reported, the others go on)."""
    limit = max(1, min(limit, MAX_ROWS))
    by_channel: dict[int, list[Any]] = defaultdict(list)
    for pk, channel_id in rows.values_list("pk", "channel_id")[:limit]:
        by_channel[channel_id].append(pk)
    report = RetryReport(refused={})
    from monitors.models import Channel

    for channel in Channel.objects.filter(pk__in=list(by_channel)):
        ids = by_channel[channel.pk]
        for start in range(0, len(ids), notify_services.RETRY_BATCH):
            try:
                queued, _ = notify_services.retry_dead_letters(
                    channel, notification_ids=ids[start : start + notify_services.RETRY_BATCH]
                )
            except notify_services.RetryError as exc:
                assert report.refused is not None
                report.refused[channel.pk] = str(exc)
                break
            report.queued += queued
    return report


def resend(notification: Notification) -> Notification:
    """Sends one notification again (sent, failed or waiting): pending now, with a new retry
    budget, and enqueued after commit. It keeps its idempotency key, so a receiver that did
    get it can tell it is the same one."""
    now = timezone.now()
    with transaction.atomic():
        row = Notification.objects.select_for_update().get(pk=notification.pk)
        if row.status == Notification.DeliveryStatus.SENDING and (
            row.claimed_until is not None and row.claimed_until > now
        ):
            raise notify_services.RetryError("it is being sent right now")
        row.status = Notification.DeliveryStatus.PENDING
        row.next_attempt_at = now
        row.claimed_until = None
        row.retry_until = now + timedelta(hours=settings.NOTIFY_RETRY_FOR_HOURS)
        row.save(update_fields=["status", "next_attempt_at", "claimed_until", "retry_until"])
        queue.enqueue_on_commit([row.pk])
    return row


# --- accounts --------------------------------------------------------------------------------


def find_user(name_or_id: str) -> User:
    users = get_user_model()._default_manager
    query = Q(username=name_or_id) | Q(email__iexact=name_or_id)
    if name_or_id.isdigit():
        query |= Q(pk=int(name_or_id))
    found = list(users.filter(query)[:2])
    if len(found) != 1:
        raise LookupError(
            f"no account {name_or_id!r}" if not found else f"{name_or_id!r} names two accounts"
        )
    user: User = found[0]
    return user


def set_account_enabled(owner: User, *, enabled: bool, dry_run: bool = False) -> list[int]:
    """Pauses every enabled monitor of ``owner`` (or resumes every paused one) through
    services.monitor_set_enabled: open incidents end and the channels that heard them are
    told, as when the owner pauses them. Returns the monitors changed."""
    monitors = list(
        Monitor.objects.filter(owner_id=owner.pk, enabled=not enabled).order_by("pk")[:MAX_ROWS]
    )
    if not dry_run:
        for monitor in monitors:
            services.monitor_set_enabled(monitor=monitor, enabled=enabled)
    return [m.pk for m in monitors]


# --- a monitor's evaluations -----------------------------------------------------------------


@dataclass(frozen=True)
class MonitorReport:
    monitor: Monitor
    next_due_at: datetime | None
    incidents: list[Incident]
    notifications: list[Notification]


def monitor_report(monitor_id: int, *, recent: int = 10) -> MonitorReport:
    monitor = Monitor.objects.select_related("owner", "source").get(pk=monitor_id)
    recent = max(1, min(recent, 200))
    schedule = Schedule.objects.filter(monitor_id=monitor.pk).first()
    return MonitorReport(
        monitor=monitor,
        next_due_at=schedule.next_due_at if schedule else None,
        incidents=list(monitor.incidents.order_by("-opened_at")[:recent]),
        notifications=list(
            Notification.objects.filter(monitor_id=monitor.pk)
            .select_related("channel")
            .order_by("-created_at")[:recent]
        ),
    )
