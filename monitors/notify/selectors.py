"""Reads for the channels API and page: dead letters (deliveries that gave up); an owner's time
zone for the notifications about no monitor."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import Count, Q, QuerySet

from monitors.models import Channel, Notification

DEAD = Q(status=Notification.DeliveryStatus.FAILED) & ~Q(event=Notification.Event.TEST)


def channel_list(*, owner: AbstractBaseUser | AnonymousUser) -> QuerySet[Channel]:
    return Channel.objects.filter(owner_id=owner.pk)


def dead_letters(*, channel: Channel) -> QuerySet[Notification]:
    """The channel's notifications that failed for good (tests excluded), newest first, with
    their attempts."""
    return (
        Notification.objects.filter(DEAD, channel_id=channel.pk)
        .select_related("monitor")
        .prefetch_related("delivery_attempts")
        .order_by("-created_at")
    )


def channels_with_dead_letters(channels: QuerySet[Channel]) -> QuerySet[Channel]:
    """``channels`` with ``dead_letter_count``."""
    return channels.annotate(
        dead_letter_count=Count(
            "notifications",
            filter=Q(notifications__status=Notification.DeliveryStatus.FAILED)
            & ~Q(notifications__event=Notification.Event.TEST),
        )
    )


def outbox_backlog() -> int:
    """Notifications waiting to be delivered (pending or being sent)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM monitors_notification WHERE status IN ('pending', 'sending')"
        )
        return int(cursor.fetchone()[0])


PREVIEW_EVENTS = [
    Notification.Event.FIRED,
    Notification.Event.REPEATED,
    Notification.Event.WARNING_RAISED,
    Notification.Event.RESOLVED,
    Notification.Event.WARNING_CLEARED,
]


def latest_alert_payload(*, owner: AbstractBaseUser | AnonymousUser) -> dict[str, object] | None:
    """The payload of the owner's most recent notification about a monitor's event (fired,
    resolved, a warning…; a test or a channel's trouble does not count), to preview a
    channel's message templates with."""
    payload = (
        Notification.objects.filter(
            channel__owner_id=owner.pk, monitor__isnull=False, event__in=PREVIEW_EVENTS
        )
        .order_by("-created_at")
        .values_list("payload", flat=True)
        .first()
    )
    return payload if isinstance(payload, dict) else None


def owner_time_zone(owner_id: int) -> str:
    """The account's IANA time zone (accounts.Profile, read without importing accounts); "UTC"
    for a user without a profile."""
    zone = (
        get_user_model()
        .objects.filter(pk=owner_id)
        .values_list("profile__time_zone", flat=True)
        .first()
    )
    return str(zone or "UTC")
