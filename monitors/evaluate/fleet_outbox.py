"""What a fleet monitor's tick tells (in the tick's transaction, ``evaluate.fleet``):
incidents opened and resolved per series (one statement each way), their peaks tracked, and
the outbox: one row per channel per notifying series, naming it, or one row per channel for
the whole tick listing every change when more series notify than the storm threshold (its key
names the monitor and the tick, so a replay is harmless). Also what a pause or a new
definition tells (``stop_series``)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

import alerts_core as ac
from monitors import fleet
from monitors.evaluate import time_zones
from monitors.evaluate.audience import deliverable_channels
from monitors.evaluate.fleet_series import SeriesDecision
from monitors.influxdb import client as influx
from monitors.influxdb.fleet import points_by_series
from monitors.models import Channel, Incident, Monitor, Notification, SeriesState
from monitors.notify import queue
from monitors.notify.payload import MAX_LISTED, Payload, SeriesChange, SeriesRef
from monitors.vocabulary import NotificationEvent
from shared.links import absolute_url

logger = logging.getLogger(__name__)

POINTS_FOR_AT_MOST = 10  # notifying series whose points are fetched for their messages
MAX_POINTS = 60

_PEAKS = """
UPDATE monitors_incident AS i
SET last_value = v.value,
    peak_value = CASE
        WHEN i.peak_value IS NULL
          OR (%(below)s AND v.value < i.peak_value)
          OR (NOT %(below)s AND v.value > i.peak_value) THEN v.value
        ELSE i.peak_value
    END
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(key text, value float8)
WHERE i.monitor_id = %(monitor)s AND i.series_key = v.key AND i.resolved_at IS NULL
"""


def attach_points(monitor: Monitor, decisions: list[SeriesDecision], now: datetime) -> None:
    """Per-series messages show the series' points (fetched before the transaction, in one
    request, for a few notifying series only: a storm's message lists values instead)."""
    notifying = [d for d in decisions if d.events and d.notifying and d.value is not None]
    if not notifying or len(notifying) > min(POINTS_FOR_AT_MOST, storm_threshold(monitor)):
        return
    if not deliverable_channels({monitor.pk}):
        return
    only = {key: sorted({d.tags[key] for d in notifying}) for key in monitor.group_by}
    try:
        found = points_by_series(monitor, start=now - monitor.window, end=now, only=only)
    except influx.InfluxError as exc:
        logger.warning("points for monitor %s's series unavailable: %s", monitor.pk, exc)
        return
    for d in notifying:
        series = found.get(d.key)
        if series is not None:
            d.points = [[_iso_ms(t), v] for t, v in series.points[-MAX_POINTS:]]


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.get_current_timezone()).isoformat()


def storm_threshold(monitor: Monitor) -> int:
    return monitor.storm_threshold or settings.FLEET_STORM_THRESHOLD


def record_events(
    monitor: Monitor, decisions: list[SeriesDecision], due_at: datetime, now: datetime
) -> tuple[list[str], bool]:
    """Incidents per series, then the outbox: one row per channel per notifying event, or one
    per channel for the whole tick when more series notify than the storm threshold. Returns
    the ids of the outbox rows inserted (a row whose key is there already is not)."""
    _track_peaks(monitor, decisions)
    acting = [d for d in decisions if d.events]
    if not acting:
        return [], False
    incidents = _incidents(monitor, acting, now)
    told = [
        (d, e)
        for d in acting
        for e in d.events
        if e.notifies and not ((i := incidents.get(d.key)) and i.hushes(e.kind.value))
    ]
    if not told:
        return [], False
    channels = deliverable_channels({monitor.pk}).get(monitor.pk, [])
    if not channels:
        return [], False
    storm = len({d.key for d, _ in told}) > storm_threshold(monitor)
    if storm:
        rows = [_storm_row(monitor, told, incidents, due_at, now, c) for c in channels]
    else:
        tick = _TickConstants(monitor, now)
        rows = [
            _series_row(monitor, d, e, incidents.get(d.key), c, tick)
            for d, e in told
            for c in channels
        ]
    return insert_outbox(monitor, rows), storm


# The tick's outbox rows in one statement (a storm per series is a thousand rows: Django's
# bulk_create builds a model instance and compiles SQL per object, most of the tick's extra
# CPU). The same columns a Notification gets from its defaults; an idempotency key that is
# there already (a replayed tick) inserts nothing, and only new rows' ids come back.
_OUTBOX = """
INSERT INTO monitors_notification (
    id, monitor_id, incident_id, channel_id, event, idempotency_key, payload, series_key,
    status, attempts, next_attempt_at, last_error, created_at
)
SELECT gen_random_uuid(), %(monitor)s, v.incident, v.channel, v.event, v.key, v.payload,
    v.series, %(status)s, 0, %(now)s, '', %(now)s
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(
    incident bigint, channel bigint, event text, key text, payload jsonb, series text
)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id
"""


def insert_outbox(monitor: Monitor, rows: list[dict[str, Any]]) -> list[str]:
    """Inserts outbox rows (``_series_row`` / ``_storm_row``) pending now; returns the new
    rows' ids."""
    if not rows:
        return []
    params: dict[str, Any] = {
        "monitor": monitor.pk,
        "now": timezone.now(),
        "status": Notification.DeliveryStatus.PENDING.value,
        "rows": json.dumps(rows),  # JSONField's own encoding (payloads are JSON-ready)
    }
    with connection.cursor() as cursor:
        cursor.execute(_OUTBOX, params)
        return [str(pk) for (pk,) in cursor.fetchall()]


def _incidents(
    monitor: Monitor, acting: list[SeriesDecision], now: datetime
) -> dict[str, Incident]:
    """Opens and resolves the series' incidents (in bulk); returns each series' incident."""
    current = {
        i.series_key: i
        for i in Incident.objects.filter(
            monitor=monitor, series_key__in=[d.key for d in acting], resolved_at=None
        )
    }
    opened: list[Incident] = []
    resolved: list[Incident] = []
    label = fleet.series_label
    for d in acting:
        incident = current.get(d.key)
        for event in d.events:
            if event.kind is ac.EventKind.FIRED and not event.catch_up and incident is None:
                incident = Incident(
                    monitor=monitor,
                    series_key=d.key,
                    opened_at=now,
                    opened_value=event.value,
                    peak_value=event.value,
                    last_value=event.value,
                    summary=f"{label(d.tags, monitor.group_by)}: {event.message}"[:500],
                )
                opened.append(incident)
                current[d.key] = incident
            elif event.kind is ac.EventKind.RESOLVED and not event.catch_up and incident:
                incident.resolved_at = now
                incident.last_value = event.value
                resolved.append(incident)
    _open(monitor, opened, now)
    _resolve(resolved, now)
    return current


# A storm opens or resolves a thousand incidents: one statement each way (Django's
# bulk_create and bulk_update compile SQL per object, half a second of CPU for a thousand).
_OPEN = """
INSERT INTO monitors_incident (
    monitor_id, series_key, severity, opened_at, opened_value, peak_value, last_value, summary
)
SELECT %(monitor)s, v.key, 'critical', %(now)s, v.value, v.value, v.value, v.summary
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(key text, value float8, summary text)
RETURNING series_key, id
"""
_RESOLVE = """
UPDATE monitors_incident AS i SET resolved_at = %(now)s, last_value = v.value
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(id bigint, value float8)
WHERE i.id = v.id
"""


def _open(monitor: Monitor, opened: list[Incident], now: datetime) -> None:
    if not opened:
        return
    rows = [{"key": i.series_key, "value": i.opened_value, "summary": i.summary} for i in opened]
    params: dict[str, Any] = {"monitor": monitor.pk, "now": now, "rows": json.dumps(rows)}
    with connection.cursor() as cursor:
        cursor.execute(_OPEN, params)
        ids = dict(cursor.fetchall())
    for incident in opened:
        incident.pk = ids[incident.series_key]
        incident._state.adding = False


def _resolve(resolved: list[Incident], now: datetime) -> None:
    if not resolved:
        return
    rows = [{"id": i.pk, "value": i.last_value} for i in resolved]
    with connection.cursor() as cursor:
        cursor.execute(_RESOLVE, {"now": now, "rows": json.dumps(rows)})


def _track_peaks(monitor: Monitor, decisions: list[SeriesDecision]) -> None:
    rows = [
        {"key": d.key, "value": d.value}
        for d in decisions
        if d.state.alerting and d.value is not None
    ]
    if rows:
        params: dict[str, Any] = {
            "rows": json.dumps(rows),
            "monitor": monitor.pk,
            "below": monitor.comparator == "below",
        }
        with connection.cursor() as cursor:
            cursor.execute(_PEAKS, params)


def series_ref(monitor: Monitor, key: str, tags: dict[str, str]) -> SeriesRef:
    return {"key": key, "label": fleet.series_label(tags, monitor.group_by), "tags": dict(tags)}


def key_digest(key: str) -> str:
    """A series key's short stable digest (idempotency keys are at most 200 characters)."""
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _monitor_ref(monitor: Monitor) -> dict[str, Any]:
    return {
        "id": monitor.pk,
        "name": monitor.name,
        "url": absolute_url(reverse("pages:monitor", args=[monitor.pk])),
    }


class _TickConstants:
    """What every per-series message of one tick shares (built once, not per message): the
    monitor's link (a URL reversal each) and its thresholds at the tick (day or night)."""

    def __init__(self, monitor: Monitor, now: datetime) -> None:
        self.monitor_ref = _monitor_ref(monitor)
        self.now = now
        self.thresholds = monitor.thresholds_at(now, time_zones.of(monitor))


def _series_row(
    monitor: Monitor,
    d: SeriesDecision,
    event: ac.Event,
    incident: Incident | None,
    channel: Channel,
    tick: _TickConstants,
) -> dict[str, Any]:
    """One series' outbox row for ``insert_outbox``. Its key names the series' state version
    after this tick's write: a replay of the same tick computes the same key."""
    key = f"m{monitor.pk}:s{key_digest(d.key)}:v{d.version}:{event.kind.value}:c{channel.pk}"
    return {
        "incident": incident.pk if incident is not None else None,
        "channel": channel.pk,
        "event": event.kind.value,
        "key": key,
        "series": d.key,
        "payload": series_payload(monitor, d.key, d.tags, event, incident, d.points, tick=tick),
    }


def series_payload(
    monitor: Monitor,
    key: str,
    tags: dict[str, str],
    event: ac.Event,
    incident: Incident | None,
    points: list[list[Any]],
    *,
    tick: _TickConstants | None = None,
) -> dict[str, Any]:
    """A series' notification: the monitor's payload naming the series (docs/notifications.md).
    ``tick``: what this tick's messages share, when the event happened at its moment."""
    series = series_ref(monitor, key, tags)
    warned = event.kind in (ac.EventKind.WARNING_RAISED, ac.EventKind.WARNING_CLEARED)
    if tick is not None and tick.now == event.at:
        t, monitor_ref = tick.thresholds, tick.monitor_ref
    else:
        t = monitor.thresholds_at(event.at, time_zones.of(monitor))  # the night's, at night
        monitor_ref = _monitor_ref(monitor)
    resolved_at = incident.resolved_at if incident else None
    duration = (resolved_at - incident.opened_at) if incident and resolved_at else None
    return Payload(
        event=event.kind.value,
        occurred_at=event.at,
        monitor=monitor_ref,  # type: ignore[arg-type]
        status=event.status.value,
        previous_status=event.previous_status.value,
        reason=f"{series['label']}: {event.message}",
        value=event.value,
        threshold=t.warning if warned else t.critical,
        threshold_kind="warning" if warned else "critical",
        comparator=monitor.comparator,
        aggregation=monitor.aggregation,
        window_seconds=monitor.window.total_seconds(),
        incident=None
        if incident is None
        else {
            "id": incident.pk,
            "opened_at": incident.opened_at.isoformat(),
            "resolved_at": resolved_at.isoformat() if resolved_at else None,
            "duration_seconds": duration.total_seconds() if duration else None,
        },
        points=points,
        series=series,
        unit=monitor.unit,
        precision=monitor.precision,
        tags={**(monitor.tags or {}), **tags},
        time_zone=time_zones.shown(monitor),
    ).as_json()


def _storm_row(
    monitor: Monitor,
    told: list[tuple[SeriesDecision, ac.Event]],
    incidents: dict[str, Incident],
    due_at: datetime,
    now: datetime,
    channel: Channel,
) -> dict[str, Any]:
    tick = int(due_at.timestamp() * 1000)
    changes: list[SeriesChange] = [
        {
            "series": series_ref(monitor, d.key, d.tags),
            "event": e.kind.value,
            "status": e.status.value,
            "previous_status": e.previous_status.value,
            "value": e.value,
            "reason": e.message,
            "incident_id": incidents[d.key].pk if d.key in incidents else None,
        }
        for d, e in told
    ]
    kinds = Counter(c["event"] for c in changes)
    said = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(kinds.items()))
    payload = Payload(
        event=NotificationEvent.SERIES_CHANGED.value,
        occurred_at=now,
        monitor=_monitor_ref(monitor),  # type: ignore[arg-type]
        reason=f"{len({d.key for d, _ in told})} series changed state: {said}",
        threshold=monitor.thresholds_at(now, time_zones.of(monitor)).critical,
        comparator=monitor.comparator,
        aggregation=monitor.aggregation,
        window_seconds=monitor.window.total_seconds(),
        changes=changes[:MAX_LISTED],
        changes_total=len(changes),
        unit=monitor.unit,
        precision=monitor.precision,
        time_zone=time_zones.shown(monitor),
    ).as_json()
    return {
        "incident": None,
        "channel": channel.pk,
        "event": NotificationEvent.SERIES_CHANGED.value,
        "key": f"m{monitor.pk}:t{tick}:storm:c{channel.pk}",  # the tick's: once per channel
        "series": "",
        "payload": payload,
    }


def stop_series(
    monitor: Monitor, *, paused: bool, silenced: set[str] | None, now: datetime
) -> list[Any]:
    """A pause or a new definition of a fleet monitor (alerts_core's ``pause`` /
    ``redefine`` per series): each firing series' incident ends, its channels hear it as
    they would from an evaluation, and the series are forgotten (a resume or the new
    definition starts afresh, as a monitor's state does). Runs in the caller's transaction,
    which holds the monitor's row and has moved its ``state_version`` on. ``silenced``: the
    series keys under a silence, or None when the whole monitor is. Returns the outbox ids."""
    stop = ac.pause if paused else ac.redefine
    rows = list(SeriesState.objects.filter(monitor=monitor))
    if not rows:
        return []
    open_incidents = {
        i.series_key: i
        for i in Incident.objects.filter(monitor=monitor, resolved_at=None).exclude(series_key="")
    }
    told: list[tuple[SeriesState, ac.Event]] = []
    for row in rows:
        try:
            state = row.alert_state()
        except Exception:  # an unreadable state has nothing to stop
            logger.warning("series %r of monitor %s: unreadable state", row.key, monitor.pk)
            continue
        quiet = silenced is None or row.key in silenced
        _, events = stop(state, now, silenced=quiet)
        incident = open_incidents.get(row.key)
        if incident is not None and events:
            why = f" — {events[0].message}"
            incident.resolved_at = now
            incident.summary = incident.summary[: 500 - len(why)] + why
        told += [(row, e) for e in events if e.notifies]
    Incident.objects.bulk_update(
        [i for i in open_incidents.values() if i.resolved_at], ["resolved_at", "summary"]
    )
    SeriesState.objects.filter(monitor=monitor).delete()
    channels = deliverable_channels({monitor.pk}).get(monitor.pk, []) if told else []
    notifications = [
        Notification(
            monitor=monitor,
            incident=open_incidents.get(row.key),
            channel=channel,
            event=event.kind.value,
            series_key=row.key,
            idempotency_key=(
                f"m{monitor.pk}:s{key_digest(row.key)}:v{monitor.state_version}"
                f":{event.kind.value}:c{channel.pk}"
            ),
            payload=series_payload(
                monitor, row.key, row.tags, event, open_incidents.get(row.key), []
            ),
        )
        for row, event in told
        for channel in channels
    ]
    created = Notification.objects.bulk_create(notifications, ignore_conflicts=True)
    ids = [n.pk for n in created]
    if ids:
        queue.enqueue_on_commit(ids)
    return ids
