"""Reads, always scoped to an owner: another owner's rows simply do not exist."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.db.models import (
    Case,
    Field,
    IntegerField,
    ManyToManyField,
    Model,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from monitors import raw_rows
from monitors.models import (
    Channel,
    Incident,
    Monitor,
    Notification,
    SeriesState,
    Silence,
    Source,
    covering_silences,
)
from monitors.vocabulary import STATUS_ORDER

User = AbstractBaseUser | AnonymousUser


def source_list(*, owner: User) -> QuerySet[Source]:
    return Source.objects.filter(owner_id=owner.pk)


def source_name_taken(*, owner: User, name: str, exclude_id: int | None = None) -> bool:
    """Whether another of the owner's sources already has this name."""
    others = source_list(owner=owner).filter(name=name)
    if exclude_id is not None:
        others = others.exclude(pk=exclude_id)
    return others.exists()


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
# rows), then each listed monitor's due time and channel ids (in the channels' own order, as
# monitor.channels.all() lists them). {columns} are the monitor's own
# (see _listed_fields); the ORM's count, join, prefetch and model instances cost 5x as much.
_PAGE = """
SELECT page.*,
    CASE WHEN page.enabled THEN schedule.next_due_at END,
    ARRAY(
        SELECT link.channel_id FROM monitors_monitor_channels AS link
        JOIN monitors_channel AS channel ON channel.id = link.channel_id
        WHERE link.monitor_id = page.id ORDER BY {channel_order}
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
        order = _order_by("channel", Channel)
        sql = _PAGE.format(columns=columns, status_filter=status_filter, channel_order=order)
        cursor.execute(sql, params)
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


# GET /monitors written by Postgres: the same page and total as _PAGE, each row already the
# JSON object the serializer would give (see monitor_page_json), the page one JSON array.
_PAGE_JSON = """
SELECT max(page.total),
    coalesce(json_agg({row_object} ORDER BY page.name, page.id), '[]')::text
FROM (
    SELECT count(*) OVER () AS total, {columns}
    FROM monitors_monitor AS m
    WHERE m.owner_id = %(owner)s {status_filter}
    ORDER BY m.name, m.id
    LIMIT %(limit)s OFFSET %(offset)s
) AS page
LEFT JOIN monitors_schedule AS schedule ON schedule.monitor_id = page.id
"""

# A many-to-many field's ids for the page's row, in the related model's own order.
_RELATED_IDS = """ARRAY(
    SELECT link.{other} FROM {through} AS link
    JOIN {target} AS target ON target.{target_pk} = link.{other}
    WHERE link.{own} = page.id ORDER BY {order}
)"""

# Read-only attributes of a monitor that are not its columns: their SQL and JSON kind.
_COMPUTED = {"next_due_at": ("CASE WHEN page.enabled THEN schedule.next_due_at END", "datetime")}


@dataclass(frozen=True)
class MonitorPageJson:
    """One page of an owner's monitors as the JSON text of a list, and how many there are."""

    total: int
    results: str


def _json_member(column: raw_rows.JsonColumn) -> tuple[str, str]:
    """``(key, <SQL of its JSON value>)``, reading the page's row."""
    if column.kind == "computed":
        if column.source not in _COMPUTED:
            raise raw_rows.NoSqlColumn(f"monitor.{column.source}: no SQL for this attribute")
        expression, kind = _COMPUTED[column.source]
        return column.key, raw_rows.json_value(expression, kind)
    try:
        field = Monitor._meta.get_field(column.source)
    except FieldDoesNotExist as exc:
        raise raw_rows.NoSqlColumn(f"monitor.{column.source}: not a column") from exc
    quote = connection.ops.quote_name
    if column.kind == "pk_list":  # a many-to-many field: its ids in order, as prefetched ones
        if not isinstance(field, ManyToManyField):
            raise raw_rows.NoSqlColumn(f"monitor.{column.source}: not a many-to-many field")
        target = field.related_model
        assert isinstance(target, type)
        assert target._meta.pk is not None
        ids = _RELATED_IDS.format(
            through=quote(field.m2m_db_table()),
            own=quote(field.m2m_column_name()),
            other=quote(field.m2m_reverse_name()),
            target=quote(target._meta.db_table),
            target_pk=quote(target._meta.pk.column),
            order=_order_by("target", target),
        )
        return column.key, ids
    if field.name not in _listed_names() or not isinstance(field, Field):
        raise raw_rows.NoSqlColumn(f"monitor.{column.source}: not a listed column")
    return column.key, raw_rows.column_json("page", field, column.kind)


def _order_by(alias: str, model: type[Model]) -> str:
    """``model``'s default ordering (its Meta.ordering, else its pk) as SQL over ``alias``."""
    terms = []
    for name in model._meta.ordering or ["pk"]:
        assert isinstance(name, str), f"{model.__name__}: only named orderings"
        descending, bare = name.startswith("-"), name.removeprefix("-")
        field = model._meta.pk if bare == "pk" else model._meta.get_field(bare)
        assert isinstance(field, Field), f"{model.__name__}: order by its own columns"
        quoted = connection.ops.quote_name(field.column)
        terms.append(f"{alias}.{quoted} DESC" if descending else f"{alias}.{quoted}")
    return ", ".join(terms)


@functools.cache
def _listed_names() -> frozenset[str]:
    return frozenset(f.name for f in _listed_fields())


# json_build_object takes at most 100 arguments (Postgres' function limit): 50 keys.
_BUILD_OBJECT_MAX_KEYS = 50


def _row_object(members: list[tuple[str, str]]) -> str:
    """The SQL of one row's JSON object, keys in the serializer's order. Up to 50 keys one
    json_build_object; past that a row of aliased columns turned into JSON (no argument
    limit, same order and values)."""
    if len(members) <= _BUILD_OBJECT_MAX_KEYS:
        pairs = ", ".join(f"{raw_rows.json_key(key)}, {value}" for key, value in members)
        return f"json_build_object({pairs})"
    quote = connection.ops.quote_name
    aliased = ", ".join(f"{value} AS {quote(key)}" for key, value in members)
    return f"(SELECT row_to_json(o) FROM (SELECT {aliased}) AS o)"  # noqa: S608 (own SQL)


@functools.cache
def _page_json_sql(columns: tuple[raw_rows.JsonColumn, ...], status_filtered: bool) -> str:
    return _PAGE_JSON.format(
        row_object=_row_object([_json_member(c) for c in columns]),
        columns=raw_rows.select_list("m", _listed_fields()),
        status_filter="AND m.status = ANY(%(status)s)" if status_filtered else "",
    )


def monitor_page_json(
    *,
    owner: User,
    columns: tuple[raw_rows.JsonColumn, ...],
    status: str | None = None,
    limit: int | None,
    offset: int = 0,
) -> MonitorPageJson:
    """Like :func:`monitor_page`, but Postgres writes the page as JSON text: a list of objects
    with ``columns`` (see serializers.json_columns), each value as DRF renders it (datetimes in
    UTC). One statement, built once per set of columns and prepared once per connection."""
    params: dict[str, Any] = {"owner": owner.pk, "limit": limit, "offset": offset}
    if status:
        params["status"] = status.split(",")
    with connection.cursor() as cursor:
        raw_rows.execute_prepared(cursor, _page_json_sql(columns, bool(status)), params)
        total, results = cursor.fetchone()
    if total is None:  # an empty owner or an offset past the end: the window counted nothing
        total = _owned_monitors(owner, status).count() if offset else 0
    return MonitorPageJson(total=total, results=results)


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


def series_list(*, monitor: Monitor, status: str | None = None) -> QuerySet[SeriesState]:
    """A fleet monitor's series, worst first (then by key). ``status``: a comma-separated
    list of statuses to keep."""
    urgency = Case(
        *[When(status=s, then=Value(i)) for i, s in enumerate(STATUS_ORDER)],
        output_field=IntegerField(),
    )
    rows = SeriesState.objects.filter(monitor_id=monitor.pk)
    if status:
        rows = rows.filter(status__in=[s.strip() for s in status.split(",")])
    return rows.annotate(urgency=urgency).order_by("urgency", "key")


def open_series_incidents(*, monitor: Monitor) -> dict[str, Incident]:
    """A fleet monitor's open incidents by series key (at most one per series)."""
    return {
        incident.series_key: incident
        for incident in Incident.objects.filter(monitor_id=monitor.pk, resolved_at=None)
        .exclude(series_key="")
        .only("pk", "series_key", "acknowledged_at")
    }


def silenced_series_keys(*, monitor: Monitor) -> set[str]:
    """The monitor's series under an active silence of their own."""
    now = timezone.now()
    return set(
        Silence.objects.filter(monitor_id=monitor.pk, starts_at__lte=now, ends_at__gt=now)
        .exclude(series_key="")
        .values_list("series_key", flat=True)
    )


@dataclass(frozen=True, slots=True)
class ActiveSilence:
    """A silence in force and the end of its current window (a daily one's today)."""

    silence: Silence
    ends_at: datetime

    @property
    def reason(self) -> str:
        return self.silence.reason


def active_silences(*, owner: User, now: datetime) -> dict[int | None, ActiveSilence]:
    """The silences covering the owner's monitors now, by monitor id (None: the one covering
    all of them), the one whose window ends last for each."""
    found: dict[int | None, ActiveSilence] = {}
    for silence in covering_silences({owner.pk}, now) if owner.pk else []:
        window = silence.window_at(now)
        assert window is not None
        current = found.get(silence.monitor_id)
        if current is None or window[1] > current.ends_at:
            found[silence.monitor_id] = ActiveSilence(silence, window[1])
    return found


def silence_for(silences: dict[int | None, ActiveSilence], monitor_id: int) -> ActiveSilence | None:
    """Of :func:`active_silences`, the one that keeps ``monitor_id`` quiet longest."""
    candidates = [s for s in (silences.get(monitor_id), silences.get(None)) if s is not None]
    return max(candidates, key=lambda s: s.ends_at, default=None)
