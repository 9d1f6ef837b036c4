"""Escalation: while an incident stays unacknowledged, its monitor's policy (or the owner's
default policy) tells more people, step by step, then repeats its last step until someone
acknowledges or the incident resolves.

It runs on the outbox machinery, exactly once and crash safe:

* **One due row per incident** (:class:`~monitors.models.Escalation`). :func:`discover`
  writes it for every open, unacknowledged incident whose monitor has a policy (one INSERT ...
  SELECT, ``ON CONFLICT DO NOTHING``), so the evaluation paths (single series, fleet, stops)
  need no change to be escalated.
* **Claimed like every outbox row.** :func:`run_due` locks due rows and their incidents with
  ``FOR UPDATE SKIP LOCKED``; in the same transaction it writes the step's notification rows
  (stable idempotency keys: ``esc:i<incident>:s<step>:r<repeat>:c<channel>``) and advances
  the row. A worker killed mid-step rolls all of it back and the row stays due for the next
  claim; two workers never take the same row. Delivery is queued after commit and is the
  delivery path every notification takes (retries, leases, the sweeper).
* **Acknowledgement wins.** Acknowledging updates the incident row the claim locks, so a
  step either committed before the acknowledgement or sees it and finishes the row; a step
  committed just before is still checked at its send (``acknowledge.withheld_reason``).
* **On time, not at the next tick.** Beat's tick (every second) also looks one and a half
  seconds ahead (:func:`wakes`) and the task queues a run at each coming due time (Celery
  ETA), so a step is taken when it falls due rather than up to a second later.

A step applies always, in working hours only or after hours only, judged in the owner's time
zone (accounts.Profile) when it is due; a step that does not apply is passed over. A repeat
tells the last step that applies at that moment. While the monitor is silenced escalation
waits (the row is looked at again every minute) instead of telling anyone.
"""

from __future__ import annotations

import json
import logging
import time
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from monitors import display, fleet, live
from monitors.models import (
    MAX_POLICY_REPEATS,
    Channel,
    Escalation,
    EscalationPolicy,
    EscalationStep,
    Incident,
    Notification,
    SeriesState,
    covering_series_silences,
    covering_silences,
)
from monitors.notify import queue
from monitors.notify.payload import Payload
from shared.links import absolute_url

logger = logging.getLogger(__name__)

BATCH = 1000  # due rows taken per transaction
SILENCED_RECHECK = timedelta(minutes=1)
# A tick queues a run at each due time up to this far ahead: beat ticks every second, and the
# half second more covers a late tick (the overlap's wakes are queued once: :func:`wakes`).
WAKE_AHEAD = timedelta(seconds=1.5)
MAX_WAKES = 20  # per tick: due times in the same 100 ms share one run
_E = Escalation._meta.db_table
_I = Incident._meta.db_table
_M = Incident._meta.get_field("monitor").related_model._meta.db_table  # type: ignore[union-attr]
_P = EscalationPolicy._meta.db_table
_S = EscalationStep._meta.db_table

# Open, unacknowledged incidents that opened while their policy existed and have no row yet.
# Only table names are formatted in.
DISCOVER_SQL = f"""
INSERT INTO {_E} (incident_id, policy_id, next_step, repeats, due_at, finished_at, finished_reason)
SELECT i.id, p.id, 0, 0, i.opened_at + make_interval(mins => s.after_minutes), NULL, ''
FROM {_I} i
JOIN {_M} m ON m.id = i.monitor_id
JOIN {_P} p ON p.id = COALESCE(
    m.escalation_policy_id,
    (SELECT d.id FROM {_P} d WHERE d.owner_id = m.owner_id AND d.is_default)
)
JOIN {_S} s ON s.policy_id = p.id AND s.position = 0
WHERE i.resolved_at IS NULL AND i.acknowledged_at IS NULL AND i.opened_at >= p.created_at
  AND NOT EXISTS (SELECT 1 FROM {_E} e WHERE e.incident_id = i.id)
ON CONFLICT (incident_id) DO NOTHING
"""  # noqa: S608


@dataclass
class Result:
    taken: int = 0  # due rows handled
    notifications: list[Any] = field(default_factory=list)  # outbox row ids written
    committed_at: float | None = None  # time.perf_counter() at the commit (benches read it)


def discover() -> int:
    """Writes the due row of every incident that should escalate and has none yet."""
    with connection.cursor() as cursor:
        cursor.execute(DISCOVER_SQL)
        return int(cursor.rowcount)


def take_due(*, now: datetime | None = None) -> int:
    """Every due step, a batch per transaction: the task body of a tick and of a wake."""
    taken = 0
    while True:
        result = run_due(now=now)
        taken += result.taken
        if result.taken < BATCH:
            return taken


@dataclass
class Tick:
    taken: int  # steps taken
    wakes: list[datetime]  # when to run again: the coming due times this tick queues


def tick(*, now: datetime | None = None) -> Tick:
    """Beat's task body: the due rows of new incidents, every due step, the coming wakes."""
    discover()
    taken = take_due(now=now)
    return Tick(taken, wakes(now=now))


# The coming due times, one per 100 ms (its latest: every row of it is due then), soonest
# first. Served by the partial index on due_at of unfinished rows. Only the table name is
# formatted in.
WAKES_SQL = f"""
SELECT max(due_at) FROM {_E}
WHERE finished_at IS NULL AND due_at > %(now)s AND due_at <= %(until)s
GROUP BY date_bin('100 milliseconds', due_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')
ORDER BY 1
LIMIT %(limit)s
"""  # noqa: S608


def wakes(*, now: datetime | None = None) -> list[datetime]:
    """The due times in the next :data:`WAKE_AHEAD` that no earlier tick has queued a run for
    (ticks overlap by half a second; the first to see a due time claims it in Redis, and if
    Redis cannot be reached it is queued anyway: a second run at once finds nothing to take)."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(WAKES_SQL, {"now": now, "until": now + WAKE_AHEAD, "limit": MAX_WAKES})
        due = [row[0] for row in cursor.fetchall()]
    return [at for at in due if _first_to_queue(at)]


def _first_to_queue(at: datetime) -> bool:
    try:
        return bool(cache.add(f"growalert:escalation-wake:{at.timestamp():.6f}", 1, timeout=10))
    except Exception:  # Redis away: the wake is worth more than a duplicate
        logger.warning("escalation wake at %s: could not record it in Redis", at)
        return True


# Columns of the claimed rows' monitors and policies that a step never reads: the pure-Python
# psycopg loaders parse every timestamp, interval and JSON document fetched (5,000
# timestamps took ~0.1-0.2 s of a 1,000-incident step). Nothing in a step may read them (each
# would be a query per row).
NOT_READ_BY_A_STEP = (
    *(
        f"incident__monitor__{name}"
        for name in (
            "description",
            "raw_query",
            "series_filter",
            "state",
            "status_reason",
            "lights_on",
            "lights_off",
            "interval",
            "repeat_every",
            "status_changed_at",
            "last_evaluated_at",
            "evaluated_due_at",
            "created_at",
            "updated_at",
        )
    ),
    "policy__created_at",
)


def run_due(*, now: datetime | None = None, limit: int = BATCH) -> Result:
    """Takes every due escalation step (up to ``limit``) in one transaction."""
    now = now or timezone.now()
    result = Result()
    with transaction.atomic():
        rows = list(
            Escalation.objects.select_for_update(skip_locked=True, of=("self", "incident"))
            .filter(finished_at__isnull=True, due_at__lte=now)
            .select_related("incident", "incident__monitor", "policy")
            .defer(*NOT_READ_BY_A_STEP)
            .order_by("due_at")[:limit]
        )
        if not rows:
            return result
        _commit_without_waiting_for_the_disk()
        steps = _steps({row.policy_id for row in rows})
        zones = _time_zones({row.policy.owner_id for row in rows})
        silenced = _silenced([row.incident for row in rows], now)
        _load_series_tags([row.incident for row in rows])
        outbox: list[OutboxRow] = []
        url = monitor_url_template()
        for row in rows:
            local = timezone.localtime(
                now, zones.get(row.policy.owner_id, zoneinfo.ZoneInfo("UTC"))
            )
            outbox += _advance(
                row, steps.get(row.policy_id, []), local, row.incident in silenced, now, url
            )
        _write_rows(rows)
        result.notifications = _insert_outbox(outbox, now)
        transaction.on_commit(lambda: setattr(result, "committed_at", time.perf_counter()))
        queue.enqueue_on_commit(result.notifications)
        if outbox:  # the incidents' pages show the step in their timelines
            live.changed_on_commit(
                {row.incident.monitor.owner_id for row in rows}, {r["monitor_id"] for r in outbox}
            )
    result.taken = len(rows)
    return result


def _commit_without_waiting_for_the_disk() -> None:
    """This transaction's commit returns before its WAL reaches the disk (``SET LOCAL
    synchronous_commit``, 50-250 ms here for a 1,000-incident step). Still crash safe: a
    Postgres crash can lose the step only whole (the rows' advance with their outbox rows), so
    the rows are due again and taken again; and nothing of it can have been sent, because
    every delivery first claims its row with a synchronous commit, which flushes the WAL
    before it, this step's included."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


# The advanced rows in one statement (Django's bulk_update builds a CASE per column and row:
# seconds for a thousand rows). Only the table name is formatted in.
ADVANCE_SQL = f"""
UPDATE {_E} AS e
SET next_step = v.next_step, repeats = v.repeats, due_at = v.due_at,
    finished_at = v.finished_at, finished_reason = v.finished_reason
FROM jsonb_to_recordset(%s::jsonb) AS v(
    incident_id bigint, next_step int, repeats int, due_at timestamptz,
    finished_at timestamptz, finished_reason text
)
WHERE e.incident_id = v.incident_id
"""  # noqa: S608


_N = Notification._meta.db_table
# Every step's outbox rows in one statement: one JSON record per incident's step (its payload
# once, its channels as an array), one row per channel. bulk_create's per-column arrays of JSON
# cost ~1 ms a row here, and a record per channel parsed each payload once per channel. The
# ids of the rows inserted come back (a replayed step's keys conflict and are skipped). Only
# the table name and constants are formatted in.
INSERT_OUTBOX_SQL = f"""
INSERT INTO {_N} (
    id, monitor_id, incident_id, channel_id, event, idempotency_key, payload, series_key,
    status, attempts, next_attempt_at, claimed_until, sent_at, last_error, created_at,
    retry_until
)
SELECT gen_random_uuid(), v.monitor_id, v.incident_id, c.channel_id,
       '{Notification.Event.ESCALATED.value}',
       'esc:i' || v.incident_id || ':s' || v.step || ':r' || v.repeat || ':c' || c.channel_id,
       v.payload, v.series_key, '{Notification.DeliveryStatus.PENDING}', 0, %(now)s, NULL,
       NULL, '', %(now)s, NULL
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(
    monitor_id bigint, incident_id bigint, step int, repeat int, channels bigint[],
    payload jsonb, series_key text
)
CROSS JOIN LATERAL unnest(v.channels) AS c(channel_id)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id
"""  # noqa: S608


def _insert_outbox(rows: list[OutboxRow], now: datetime) -> list[Any]:
    if not rows:
        return []
    with connection.cursor() as cursor:
        cursor.execute(INSERT_OUTBOX_SQL, {"now": now, "rows": json.dumps(rows)})
        return [row[0] for row in cursor.fetchall()]


def _write_rows(rows: list[Escalation]) -> None:
    values = [
        {
            "incident_id": row.incident_id,
            "next_step": row.next_step,
            "repeats": row.repeats,
            "due_at": row.due_at.isoformat(),
            "finished_at": row.finished_at.isoformat() if row.finished_at else None,
            "finished_reason": row.finished_reason,
        }
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.execute(ADVANCE_SQL, [json.dumps(values)])


Steps = list[tuple[EscalationStep, list[Channel]]]
OutboxRow = dict[str, Any]


def _advance(
    row: Escalation,
    steps: Steps,
    local: datetime,
    silenced: bool,
    now: datetime,
    url_template: str,
) -> list[OutboxRow]:
    """Moves one due row on and returns the notifications of what it took."""
    incident = row.incident
    if incident.resolved_at is not None or incident.acknowledged_at is not None:
        return _finish(row, now, "resolved" if incident.resolved_at else "acknowledged")
    if not steps:
        return _finish(row, now, "the policy has no steps")
    if silenced:
        row.due_at = now + SILENCED_RECHECK
        return []
    if row.next_step < len(steps):
        index, repeat = row.next_step, 0
        step, channels = steps[index]
        if not step.applies(row.policy, local):
            channels = []
        row.next_step += 1
        _schedule_next(row, steps, now)
    else:
        row.repeats += 1
        index, repeat = _repeating(row.policy, steps, local)
        channels = steps[index][1] if index >= 0 else []
        if row.repeats >= MAX_POLICY_REPEATS:
            _finish(row, now, f"the last step was repeated {MAX_POLICY_REPEATS} times")
        else:
            _schedule_repeat(row, now)
        repeat = row.repeats
    if not channels:
        return []
    # one per step, for its channels; times shown in the owner's zone (``local``'s)
    body = payload(row, index, repeat, now, url_template, time_zone=str(local.tzinfo or "UTC"))
    return [_step_record(row, index, repeat, channels, body)]


def _schedule_next(row: Escalation, steps: Steps, now: datetime) -> None:
    if row.next_step < len(steps):
        after = timedelta(minutes=steps[row.next_step][0].after_minutes)
        row.due_at = max(row.incident.opened_at + after, row.due_at)
    elif row.policy.repeat_minutes:
        _schedule_repeat(row, now)
    else:
        _finish(row, now, "every step was taken")


def _schedule_repeat(row: Escalation, now: datetime) -> None:
    assert row.policy.repeat_minutes
    gap = timedelta(minutes=row.policy.repeat_minutes)
    row.due_at = max(row.due_at + gap, now + gap / 2)  # a late claim never bunches repeats


def _repeating(policy: EscalationPolicy, steps: Steps, local: datetime) -> tuple[int, int]:
    """The last step that applies now (-1 if none)."""
    for index in range(len(steps) - 1, -1, -1):
        if steps[index][0].applies(policy, local):
            return index, 0
    return -1, 0


def _finish(row: Escalation, now: datetime, reason: str) -> list[OutboxRow]:
    row.finished_at, row.finished_reason = now, reason[:200]
    return []


def _steps(policy_ids: set[int]) -> dict[int, Steps]:
    """Each step's usable channels: its own, and the personal email channel of each member it
    names who is still in the account (a member who left has no membership row, so no longer
    appears in ``step.members``)."""
    found: dict[int, Steps] = defaultdict(list)
    rows = list(
        EscalationStep.objects.filter(policy_id__in=policy_ids)
        .select_related("policy")
        .prefetch_related("channels", "members")
        .order_by("policy_id", "position")
    )
    member_ids = {m.pk for step in rows for m in step.members.all()}
    personal = {
        c.member_id: c for c in Channel.objects.filter(member_id__in=member_ids).order_by("id")
    }
    for step in rows:
        owner = step.policy.owner_id
        named = list(step.channels.all())
        named += [personal[m.pk] for m in step.members.all() if m.pk in personal]
        usable = [c for c in dict.fromkeys(named) if c.deliverable and c.owner_id == owner]
        found[step.policy_id].append((step, usable))
    return found


def _time_zones(owner_ids: set[int]) -> dict[int, zoneinfo.ZoneInfo]:
    zones: dict[int, zoneinfo.ZoneInfo] = {}
    for pk, name in User.objects.filter(pk__in=owner_ids).values_list("pk", "profile__time_zone"):
        try:
            zones[pk] = zoneinfo.ZoneInfo(name or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zones[pk] = zoneinfo.ZoneInfo("UTC")
    return zones


def _silenced(incidents: list[Incident], now: datetime) -> set[Incident]:
    owners = {i.monitor.owner_id for i in incidents}
    silences = covering_silences(owners, now)
    everything = {s.owner_id for s in silences if s.monitor_id is None}
    single = {s.monitor_id for s in silences if s.monitor_id is not None}
    series = {
        (s.monitor_id, s.series_key)
        for s in covering_series_silences([i.monitor_id for i in incidents if i.series_key], now)
    }
    return {
        i
        for i in incidents
        if i.monitor.owner_id in everything
        or i.monitor_id in single
        or (i.monitor_id, i.series_key) in series
    }


def _load_series_tags(incidents: list[Incident]) -> None:
    """A fleet incident's series tags (for its payload), in one query."""
    fleet_incidents = [i for i in incidents if i.series_key]
    if not fleet_incidents:
        return
    found = {
        (s.monitor_id, s.key): s.tags
        for s in SeriesState.objects.filter(
            monitor_id__in={i.monitor_id for i in fleet_incidents},
            key__in={i.series_key for i in fleet_incidents},
        ).only("monitor_id", "key", "tags")
    }
    for incident in fleet_incidents:
        incident.series_tags = found.get((incident.monitor_id, incident.series_key), {})  # type: ignore[attr-defined]


def _step_record(
    row: Escalation, index: int, repeat: int, channels: list[Channel], body: dict[str, Any]
) -> OutboxRow:
    """One step's outbox rows as :data:`INSERT_OUTBOX_SQL` reads them (no model instances: a
    thousand of them cost more than the rest of the step). Idempotency keys
    ``esc:i<incident>:s<step>:r<repeat>:c<channel>``."""
    incident = row.incident
    return {
        "monitor_id": incident.monitor_id,
        "incident_id": incident.pk,
        "step": index,
        "repeat": repeat,
        "channels": [channel.pk for channel in channels],
        "payload": body,
        "series_key": incident.series_key,
    }


_PK_MARK = "987654321"


def monitor_url_template() -> str:
    """The monitor page's address with a mark for its id: ``reverse`` costs ~0.4 ms, and a
    step of 1,000 incidents needs 1,000 addresses."""
    return absolute_url(reverse("pages:monitor", args=[int(_PK_MARK)]))


def payload(
    row: Escalation,
    index: int,
    repeat: int,
    now: datetime,
    url_template: str = "",
    *,
    time_zone: str = "UTC",
) -> dict[str, Any]:
    """An escalation step's notification (payload version 1, event ``escalated``)."""
    incident, policy = row.incident, row.policy
    monitor = incident.monitor
    waited = display.duration(now - incident.opened_at)
    step = f"step {index + 1}" + (f", repeat {repeat}" if repeat else "")
    reason = f"Unacknowledged for {waited} ({policy.name}: {step}). {incident.summary}"
    tags = dict(monitor.tags or {})
    series = None
    if incident.series_key:
        series_tags = getattr(incident, "series_tags", None) or {}
        label = fleet.series_label(series_tags, monitor.group_by) or incident.series_key
        series = {"key": incident.series_key, "label": label, "tags": series_tags}
    body = Payload(
        event=Notification.Event.ESCALATED.value,
        occurred_at=now,
        monitor={
            "id": monitor.pk,
            "name": monitor.name,
            "url": (url_template or monitor_url_template()).replace(_PK_MARK, str(monitor.pk)),
        },
        status=monitor.status,
        previous_status=monitor.status,
        reason=reason.strip()[:500],
        value=incident.last_value,
        threshold=monitor.critical,
        threshold_kind="critical",
        threshold_high=monitor.critical_high,
        comparator=monitor.comparator,
        aggregation=monitor.aggregation,
        window_seconds=monitor.window.total_seconds(),
        incident={
            "id": incident.pk,
            "opened_at": incident.opened_at.isoformat(),
            "resolved_at": None,
            "duration_seconds": None,
        },
        series=series,  # type: ignore[arg-type]
        unit=monitor.unit,
        precision=monitor.precision,
        tags=tags,
        failing_since=incident.opened_at,
        time_zone=time_zone,
    ).as_json()
    body["escalation"] = {"policy": policy.name, "step": index + 1, "repeat": repeat}
    return body
