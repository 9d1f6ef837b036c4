"""Reads, always scoped to an owner: another owner's rows simply do not exist."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from monitors.models import Channel, Incident, Monitor, Notification, Silence, Source, Status

User = AbstractBaseUser | AnonymousUser

# Most urgent first on dashboards and lists.
STATUS_ORDER = [
    Status.FIRING,
    Status.ERROR,
    Status.NO_DATA,
    Status.WARNING,
    Status.PENDING,
    Status.OK,
    Status.PAUSED,
]


def source_list(*, owner: User) -> QuerySet[Source]:
    return Source.objects.filter(owner_id=owner.pk)


def channel_list(*, owner: User) -> QuerySet[Channel]:
    return Channel.objects.filter(owner_id=owner.pk)


def _owned_monitors(owner: User, status: str | None) -> QuerySet[Monitor]:
    monitors = Monitor.objects.filter(owner_id=owner.pk)
    return monitors.filter(status__in=status.split(",")) if status else monitors


def monitor_list(*, owner: User, status: str | None = None) -> QuerySet[Monitor]:
    """The owner's monitors (``status``: a comma-separated filter), with their source, due time
    (in the schedule row) and channels loaded."""
    monitors = _owned_monitors(owner, status)
    return monitors.select_related("source", "schedule").prefetch_related("channels")


def monitor_page_list(*, owner: User, status: str | None = None) -> QuerySet[Monitor]:
    """``monitor_list`` for GET /monitors, which reads 50 at a time: each monitor's channel
    ids come as ``channel_ids``, aggregated in the same query (a prefetch costs another query
    and a related manager per monitor), and the source is not joined (only its id is shown).
    For reading only: ``channel_ids`` does not follow later changes to the channels."""
    channel_ids = ArrayAgg(
        "channels__id",
        filter=Q(channels__id__isnull=False),
        order_by="channels__id",
        default=Value([]),
    )
    monitors = _owned_monitors(owner, status)
    return monitors.select_related("schedule").annotate(channel_ids=channel_ids)


def monitor_list_by_urgency(*, owner: User) -> QuerySet[Monitor]:
    urgency = Case(
        *[When(status=s, then=Value(i)) for i, s in enumerate(STATUS_ORDER)],
        output_field=IntegerField(),
    )
    return monitor_list(owner=owner).annotate(urgency=urgency).order_by("urgency", "name")


def incident_list(*, owner: User, monitor_id: int | None = None) -> QuerySet[Incident]:
    incidents = Incident.objects.filter(monitor__owner_id=owner.pk).select_related("monitor")
    if monitor_id is not None:
        incidents = incidents.filter(monitor_id=monitor_id)
    return incidents


def notification_list(*, owner: User, monitor_id: int | None = None) -> QuerySet[Notification]:
    notifications = Notification.objects.filter(channel__owner_id=owner.pk).select_related(
        "channel", "monitor"
    )
    if monitor_id is not None:
        notifications = notifications.filter(monitor_id=monitor_id)
    return notifications


def silence_list(*, owner: User) -> QuerySet[Silence]:
    return Silence.objects.filter(owner_id=owner.pk).select_related("monitor")
