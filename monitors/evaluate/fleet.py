"""Fleet monitors in the pipeline: one grouped InfluxDB statement, one state per series.

For each claimed fleet monitor (``evaluate``):

1. Its series rows are loaded (one query) and every series is stepped through the same
   ``step.step`` as a single-series monitor: the series that answered the grouped statement
   with their value, the series seen before that did not answer with no data (the no-data
   policy for that series alone), new series from a fresh state. At most FLEET_MAX_SERIES
   series are watched: known ones first, then new ones in key order; the rest are counted.
2. In one transaction: the monitor's own row is updated conditionally (``state_version`` as
   read, ``evaluated_due_at`` before this tick), which claims the tick: a second worker or a
   replay finds it applied and writes nothing. Then new series are inserted and changed
   series updated with the same conditional update as monitors (``state_version`` and
   ``evaluated_due_at``); a series is written only when its state changes in a way the state
   machine can tell apart (``_significant``), or when its last value should be shown (at once
   while it is not OK, otherwise at most every FLEET_VALUE_REFRESH_SECONDS). Incidents open
   and resolve per series; each notifying event gets one outbox row per channel, naming the
   series, unless more than the storm threshold of series notify in this tick: then one row
   per channel lists them all (its key names the monitor and the tick, so a replay is
   harmless).
3. After commit, delivery is enqueued through ``notify.queue``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

import alerts_core as ac
from monitors import fleet, live, metrics
from monitors.definition import Thresholds
from monitors.evaluate import step
from monitors.evaluate.audience import deliverable_channels
from monitors.influxdb import client as influx
from monitors.influxdb.fleet import FleetObservation, points_by_series
from monitors.models import Channel, Incident, Monitor, Notification, SeriesState, Status
from monitors.notify import queue
from monitors.notify.payload import MAX_LISTED, Payload, SeriesChange, SeriesRef
from monitors.vocabulary import STATUS_ORDER, NotificationEvent, status_label
from shared.links import absolute_url

logger = logging.getLogger(__name__)

POINTS_FOR_AT_MOST = 10  # notifying series whose points are fetched for their messages
MAX_POINTS = 60

_CLAIM = """
UPDATE monitors_monitor
SET status = %(status)s,
    status_reason = %(reason)s,
    status_changed_at = CASE WHEN status = %(status)s THEN status_changed_at ELSE %(now)s END,
    state_version = state_version + 1,
    last_value = NULL,
    last_evaluated_at = %(now)s,
    evaluated_due_at = %(due_at)s
WHERE id = %(id)s
  AND state_version = %(version)s
  AND (evaluated_due_at IS NULL OR evaluated_due_at < %(due_at)s)
RETURNING state_version
"""
_INSERT = """
INSERT INTO monitors_seriesstate (
    monitor_id, key, tags, status, state, state_version, status_reason, status_changed_at,
    last_value, last_evaluated_at, evaluated_due_at, created_at
)
SELECT %(monitor)s, v.key, v.tags, v.status, v.state, 1, v.reason, %(now)s,
    v.value, %(now)s, %(due_at)s, %(now)s
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(
    key text, tags jsonb, status text, state jsonb, reason text, value float8
)
ON CONFLICT (monitor_id, key) DO NOTHING
RETURNING key
"""
_UPDATE = """
UPDATE monitors_seriesstate AS s
SET status = v.status,
    state = v.state,
    state_version = s.state_version + 1,
    status_reason = v.reason,
    status_changed_at = CASE WHEN s.status = v.status THEN s.status_changed_at ELSE %(now)s END,
    last_value = v.value,
    last_evaluated_at = %(now)s,
    evaluated_due_at = %(due_at)s
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(
    id bigint, version bigint, status text, state jsonb, reason text, value float8
)
WHERE s.id = v.id
  AND s.monitor_id = %(monitor)s
  AND s.state_version = v.version
  AND (s.evaluated_due_at IS NULL OR s.evaluated_due_at < %(due_at)s)
RETURNING s.key, s.state_version
"""
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


_KNOWN = """
SELECT id, key, tags::text, status, state::text, state_version, last_value,
    extract(epoch FROM last_evaluated_at)::float8
FROM monitors_seriesstate
WHERE monitor_id = %s
"""


# Decoded series states by (row id, state_version): a steady series is not rewritten, so the
# next tick reads the same version and skips decoding it. A row's version moves on with every
# write and a new row has a new id, so an entry can never stand for another state; states are
# immutable. Bounded: cleared when full.
MAX_DECODED = 200_000
_DECODED: dict[tuple[int, int], ac.MonitorState] = {}


@dataclass(slots=True)
class SeriesRow:
    """A stored series as evaluation reads it: the columns it needs, read in one raw query
    (10,000 model instances with their timestamps cost a second of Python per tick)."""

    pk: int
    key: str
    tags_json: str  # decoded only for a series that did not answer (its tags come back)
    status: str
    state_json: str
    state_version: int
    last_value: float | None
    last_evaluated_at: float | None  # epoch seconds

    def alert_state(self) -> ac.MonitorState:
        """The stored state, decoded once per row version in this process (see _DECODED)."""
        version = (self.pk, self.state_version)
        state = _DECODED.get(version)
        if state is None:
            data = json.loads(self.state_json)
            state = ac.MonitorState.from_dict(data) if data else ac.MonitorState()
            if len(_DECODED) >= MAX_DECODED:
                _DECODED.clear()
            _DECODED[version] = state
        return state

    @property
    def tags(self) -> dict[str, str]:
        decoded: dict[str, str] = json.loads(self.tags_json)
        return decoded


def known_series(monitor: Monitor) -> dict[str, SeriesRow]:
    """The monitor's stored series by key (JSON columns come back as text: Django leaves
    their decoding to the model field, which a raw query skips)."""
    with connection.cursor() as cursor:
        cursor.execute(_KNOWN, [monitor.pk])
        return {
            key: SeriesRow(pk, key, tags, status, state, version, value, at)
            for pk, key, tags, status, state, version, value, at in cursor.fetchall()
        }


@dataclass
class SeriesDecision:
    """One series' evaluation, decided but not yet written."""

    key: str
    tags: dict[str, str]
    row: SeriesRow | None  # None: a series seen for the first time
    value: float | None
    outcome: ac.Outcome
    state: ac.MonitorState
    events: list[ac.Event]
    write: bool
    version: int = 0  # its state_version once written
    points: list[list[Any]] = field(default_factory=list)

    @property
    def notifying(self) -> list[ac.Event]:
        return [e for e in self.events if e.notifies]


@dataclass
class FleetResult:
    applied: bool = False
    series: int = 0  # series evaluated
    written: int = 0  # series rows inserted or updated
    unwatched: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    notifications: list[Any] = field(default_factory=list)
    storm: bool = False


def evaluate(
    monitor: Monitor,
    due_at: datetime,
    observation: FleetObservation,
    now: datetime,
    *,
    silenced: bool,
    silenced_keys: set[str],
) -> FleetResult:
    """Decides every series of ``monitor`` and writes the tick in one transaction."""
    decisions, unwatched = decide_all(
        monitor, observation, now, silenced=silenced, silenced_keys=silenced_keys
    )
    status, reason = summary(monitor, [d.state.status for d in decisions], decisions, unwatched)
    if unwatched:
        metrics.record_unwatched_series(unwatched)
    _attach_points(monitor, decisions, now)
    result = FleetResult(series=len(decisions), unwatched=unwatched)
    with transaction.atomic():
        if not _claim(monitor, due_at, now, status, reason):
            return result
        written = _write(monitor, due_at, now, decisions)
        # a series whose write lost (another writer moved it on) acts on nothing this tick;
        # events always come with a write (they change the state)
        committed = [d for d in decisions if d.key in written or not d.write]
        notifications, result.storm = _record_events(monitor, committed, due_at, now)
        result.notifications = [n.pk for n in notifications]
        if result.notifications:
            queue.enqueue_on_commit(result.notifications)
        if monitor.status != status or any(d.events for d in committed):
            live.changed_on_commit([monitor.owner_id])  # its pages show the change (the grid)
    result.applied = True
    result.written = len(written)
    result.outcomes = Counter(d.state.status.value for d in committed)
    return result


def decide_all(
    monitor: Monitor,
    observation: FleetObservation,
    now: datetime,
    *,
    silenced: bool = False,
    silenced_keys: frozenset[str] | set[str] = frozenset(),
) -> tuple[list[SeriesDecision], int]:
    """Every watched series decided from its stored state (nothing written), and how many
    selected series are past the limit. The live path and the dry run share it."""
    known = known_series(monitor)
    keys, unwatched = _watched(known, observation)
    rules = (monitor.policy(), monitor.thresholds())
    decisions = [
        _decide(
            monitor, key, known.get(key), observation, now, silenced or key in silenced_keys, rules
        )
        for key in keys
    ]
    return decisions, unwatched


def _watched(known: dict[str, SeriesRow], observation: FleetObservation) -> tuple[list[str], int]:
    """The series to evaluate (known ones first, then new ones in key order, at most
    FLEET_MAX_SERIES) and how many selected series are left out."""
    limit = settings.FLEET_MAX_SERIES
    new = sorted(key for key in observation.series if key not in known)
    every = [*sorted(known), *new]
    return every[:limit], max(0, len(every) - limit)


def _decide(
    monitor: Monitor,
    key: str,
    row: SeriesRow | None,
    observation: FleetObservation,
    now: datetime,
    silenced: bool,
    rules: tuple[ac.Policy, Thresholds],
) -> SeriesDecision:
    try:
        state = row.alert_state() if row is not None else ac.MonitorState()
    except Exception:  # an unreadable stored state starts afresh (as a monitor's is reset)
        logger.warning("series %r of monitor %s had an unreadable state; reset", key, monitor.pk)
        state = ac.MonitorState()
    seen = observation.series.get(key)
    value = seen.value if seen is not None else None
    tags = seen.tags if seen is not None else (row.tags if row is not None else {})
    new_state, events, outcome = step.step(
        monitor,
        state,
        value=value,
        error=observation.error,
        now=now,
        silenced=silenced,
        rules=rules,
    )
    write = row is None or _must_write(monitor, row, state, new_state, value, now)
    return SeriesDecision(key, tags, row, value, outcome, new_state, events, write)


def _must_write(
    monitor: Monitor,
    row: SeriesRow,
    old: ac.MonitorState,
    new: ac.MonitorState,
    value: float | None,
    now: datetime,
) -> bool:
    if row.status != new.status.value:
        return True
    policy = (monitor.pending_for, monitor.recover_after)
    if _significant(old, *policy) != _significant(new, *policy):
        return True
    if value == row.last_value:
        return False
    if new.status is not ac.Status.OK or row.last_evaluated_at is None:
        return True  # a series in trouble shows its value as it moves
    return now.timestamp() - row.last_evaluated_at >= settings.FLEET_VALUE_REFRESH_SECONDS


def _significant(state: ac.MonitorState, pending_for: int, recover_after: int) -> tuple[Any, ...]:
    """What of a state the next transition can tell apart. The value and reason only
    describe; ``failures`` is read only below ``pending_for`` (reaching it fires) and
    ``passes`` only below ``recover_after`` (reaching it resolves), so their counts past those
    are the same state: a steady series is not rewritten every tick."""
    return (
        state.status,
        state.alerting,
        state.warning,
        min(state.failures, pending_for),
        min(state.passes, recover_after),
        state.since,
        state.fired_at,
        state.last_notified_at,
        state.announced,
        state.silenced,
        state.flapping,
        state.history,
        state.history_len,
    )


def summary(
    monitor: Monitor,
    statuses: list[ac.Status],
    decisions: list[SeriesDecision],
    unwatched: int,
) -> tuple[str, str]:
    """The monitor's own status (its worst series') and the sentence its owner reads."""
    if not statuses:
        status, reason = Status.NO_DATA.value, "no series match yet"
    else:
        counts = Counter(statuses)
        worst = next(s for s in STATUS_ORDER if counts[s])
        status = worst.value
        if worst is ac.Status.OK:
            reason = f"all {len(statuses)} series OK"
        else:
            names = sorted(
                fleet.series_label(d.tags, monitor.group_by)
                for d in decisions
                if d.state.status is worst
            )
            shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
            reason = (
                f"{counts[worst]} of {len(statuses)} series {status_label(worst).lower()}: {shown}"
            )
    if unwatched:
        reason += (
            f"; {unwatched} more series match, past the limit of "
            f"{settings.FLEET_MAX_SERIES}: they are not watched"
        )
    return status, reason[:500]


def _claim(monitor: Monitor, due_at: datetime, now: datetime, status: str, reason: str) -> bool:
    """The monitor's row for this tick, conditionally: False when this tick is not ours."""
    params: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "now": now,
        "due_at": due_at,
        "id": monitor.pk,
        "version": monitor.state_version,
    }
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, params)
        row = cursor.fetchone()
    if row is None:
        return False
    monitor.state_version = row[0]
    return True


def _write(
    monitor: Monitor, due_at: datetime, now: datetime, decisions: list[SeriesDecision]
) -> set[str]:
    """Inserts new series and updates changed ones; returns the keys written."""
    written: set[str] = set()
    base: dict[str, Any] = {"monitor": monitor.pk, "now": now, "due_at": due_at}
    new = [d for d in decisions if d.row is None]
    changed = [d for d in decisions if d.row is not None and d.write]
    with connection.cursor() as cursor:
        if new:
            cursor.execute(_INSERT, {**base, "rows": json.dumps([_row(d) for d in new])})
            inserted = {key for (key,) in cursor.fetchall()}
            for d in new:
                d.version = 1
            written |= inserted
        if changed:
            rows = [
                {**_row(d), "id": d.row.pk, "version": d.row.state_version}
                for d in changed
                if d.row is not None
            ]
            cursor.execute(_UPDATE, {**base, "rows": json.dumps(rows)})
            by_key = {d.key: d for d in changed}
            for key, version in cursor.fetchall():
                written.add(key)
                by_key[key].version = version
    return written


def _row(d: SeriesDecision) -> dict[str, Any]:
    return {
        "key": d.key,
        "tags": d.tags,
        "status": d.state.status.value,
        "state": d.state.to_dict(),
        "reason": d.outcome.message[:500],
        "value": d.value,
    }


def _attach_points(monitor: Monitor, decisions: list[SeriesDecision], now: datetime) -> None:
    """Per-series messages show the series' points (fetched before the transaction, in one
    request, for a few notifying series only: a storm's message lists values instead)."""
    notifying = [d for d in decisions if d.notifying and d.value is not None]
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


def _record_events(
    monitor: Monitor, decisions: list[SeriesDecision], due_at: datetime, now: datetime
) -> tuple[list[Notification], bool]:
    """Incidents per series, then the outbox: one row per channel per notifying event, or one
    per channel for the whole tick when more series notify than the storm threshold."""
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
        rows = [_storm_notification(monitor, told, incidents, due_at, now, c) for c in channels]
    else:
        rows = [
            _notification(monitor, d, e, incidents.get(d.key), c) for d, e in told for c in channels
        ]
    return Notification.objects.bulk_create(rows, ignore_conflicts=True), storm


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


def _notification(
    monitor: Monitor,
    d: SeriesDecision,
    event: ac.Event,
    incident: Incident | None,
    channel: Channel,
) -> Notification:
    key = f"m{monitor.pk}:s{key_digest(d.key)}:v{d.version}:{event.kind.value}:c{channel.pk}"
    return Notification(
        monitor=monitor,
        incident=incident,
        channel=channel,
        event=event.kind.value,
        series_key=d.key,
        idempotency_key=key,
        payload=series_payload(monitor, d.key, d.tags, event, incident, d.points),
    )


def series_payload(
    monitor: Monitor,
    key: str,
    tags: dict[str, str],
    event: ac.Event,
    incident: Incident | None,
    points: list[list[Any]],
) -> dict[str, Any]:
    """A series' notification: the monitor's payload naming the series (docs/notifications.md)."""
    series = series_ref(monitor, key, tags)
    warned = event.kind in (ac.EventKind.WARNING_RAISED, ac.EventKind.WARNING_CLEARED)
    resolved_at = incident.resolved_at if incident else None
    duration = (resolved_at - incident.opened_at) if incident and resolved_at else None
    return Payload(
        event=event.kind.value,
        occurred_at=event.at,
        monitor=_monitor_ref(monitor),  # type: ignore[arg-type]
        status=event.status.value,
        previous_status=event.previous_status.value,
        reason=f"{series['label']}: {event.message}",
        value=event.value,
        threshold=monitor.warning if warned else monitor.critical,
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
    ).as_json()


def _storm_notification(
    monitor: Monitor,
    told: list[tuple[SeriesDecision, ac.Event]],
    incidents: dict[str, Incident],
    due_at: datetime,
    now: datetime,
    channel: Channel,
) -> Notification:
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
        threshold=monitor.critical,
        comparator=monitor.comparator,
        aggregation=monitor.aggregation,
        window_seconds=monitor.window.total_seconds(),
        changes=changes[:MAX_LISTED],
        changes_total=len(changes),
        unit=monitor.unit,
        precision=monitor.precision,
    ).as_json()
    return Notification(
        monitor=monitor,
        channel=channel,
        event=NotificationEvent.SERIES_CHANGED.value,
        idempotency_key=f"m{monitor.pk}:t{tick}:storm:c{channel.pk}",
        payload=payload,
    )


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
