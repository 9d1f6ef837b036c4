"""Reads, always scoped to an owner: another owner's rows simply do not exist."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import Case, IntegerField, QuerySet, Value, When

from monitors import raw_rows
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


def source_name_taken(*, owner: User, name: str, exclude_id: int | None = None) -> bool:
    """Whether another of the owner's sources already has this name."""
    others = source_list(owner=owner).filter(name=name)
    if exclude_id is not None:
        others = others.exclude(pk=exclude_id)
    return others.exists()


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


@dataclass(frozen=True)
class MonitorPage:
    """One page of an owner's monitors, and how many there are in all."""

    total: int
    rows: list[SimpleNamespace]


# GET /monitors in one statement: the page (with the total counted by a window over the same
# rows), then each listed monitor's due time and channel ids. {columns} are the monitor's own
# (see _listed_fields); the ORM's count, join, prefetch and model instances cost 5x as much.
_PAGE = """
SELECT page.*,
    CASE WHEN page.enabled THEN schedule.next_due_at END,
    ARRAY(
        SELECT link.channel_id FROM monitors_monitor_channels AS link
        WHERE link.monitor_id = page.id ORDER BY link.channel_id
    )
FROM (
    SELECT count(*) OVER (), {columns}
    FROM monitors_monitor AS m
    WHERE m.owner_id = %(owner)s {status_filter}
    ORDER BY m.name, m.id
    LIMIT %(limit)s OFFSET %(offset)s
) AS page
LEFT JOIN monitors_schedule AS schedule ON schedule.monitor_id = page.id
ORDER BY page.name, page.id
"""


@functools.cache
def _listed_fields() -> raw_rows.Fields:
    """Every column of a monitor but its evaluation state (large, and never shown)."""
    return tuple(f for f in Monitor._meta.concrete_fields if f.name != "state")


def monitor_page(
    *, owner: User, status: str | None = None, limit: int | None, offset: int = 0
) -> MonitorPage:
    """The owner's monitors in list order (name, id), ``limit`` from ``offset`` (``None``: all),
    as plain rows carrying what the serializer reads (the model's attributes, ``next_due_at``
    and ``channel_ids``): one statement for rows and total alike."""
    fields = _listed_fields()
    columns = raw_rows.select_list("m", fields)
    params: dict[str, Any] = {"owner": owner.pk, "limit": limit, "offset": offset}
    status_filter = ""
    if status:
        status_filter = "AND m.status = ANY(%(status)s)"
        params["status"] = status.split(",")
    with connection.cursor() as cursor:
        cursor.execute(_PAGE.format(columns=columns, status_filter=status_filter), params)
        found = cursor.fetchall()
    if not found:  # an empty owner or an offset past the end: the window counted nothing
        total = _owned_monitors(owner, status).count() if offset else 0
        return MonitorPage(total=total, rows=[])
    names = [f.attname for f in fields]
    rows = []
    for _total, *values, next_due_at, channel_ids in found:
        row = SimpleNamespace(**dict(zip(names, raw_rows.loaded(fields, values), strict=True)))
        row.next_due_at, row.channel_ids = next_due_at, channel_ids
        rows.append(row)
    return MonitorPage(total=found[0][0], rows=rows)


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
