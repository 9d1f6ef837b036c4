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
   machine can tell apart (``step.significant``), or when its last value should be shown (at once
   while it is not OK, otherwise at most every FLEET_VALUE_REFRESH_SECONDS). Incidents open
   and resolve per series; each notifying event gets one outbox row per channel, naming the
   series, unless more than the storm threshold of series notify in this tick: then one row
   per channel lists them all (its key names the monitor and the tick, so a replay is
   harmless).
3. After commit, delivery is enqueued through ``notify.queue``.

Here: the decisions and the tick's transaction. The series rows' SQL is ``fleet_series``;
incidents, the outbox and storms are ``fleet_outbox``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

import alerts_core as ac
from monitors import fleet, live, metrics
from monitors.definition import Thresholds
from monitors.evaluate import fleet_outbox, fleet_series, step, time_zones
from monitors.evaluate.fleet_series import SeriesDecision, SeriesRow, known_series
from monitors.influxdb.fleet import FleetObservation
from monitors.models import Monitor, Status
from monitors.notify import queue
from monitors.vocabulary import STATUS_ORDER, status_label

logger = logging.getLogger(__name__)

# What other modules read here (pipeline, dry run, services).
stop_series = fleet_outbox.stop_series


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
    fleet_outbox.attach_points(monitor, decisions, now)
    result = FleetResult(series=len(decisions), unwatched=unwatched)
    read_version = monitor.state_version
    try:
        written = _write_tick(monitor, due_at, now, status, reason, decisions, result)
    except BaseException:
        # rolled back: the row keeps the version read. The claim moved this (resident, kept
        # between ticks) monitor's version on; left so, its redelivered tick and every later
        # one would find the row "moved on" and skip, and its error status would not be written
        monitor.state_version = read_version
        raise
    if written is None:
        return result
    result.applied = True
    result.written = len(written)
    result.outcomes = Counter(
        d.state.status.value for d in decisions if d.key in written or not d.write
    )
    return result


def _write_tick(
    monitor: Monitor,
    due_at: datetime,
    now: datetime,
    status: str,
    reason: str,
    decisions: list[SeriesDecision],
    result: FleetResult,
) -> set[str] | None:
    """The tick's one transaction; None when the tick is not ours (claimed or moved on)."""
    with transaction.atomic():
        if not fleet_series.claim(monitor, due_at, now, status, reason):
            return None
        written = fleet_series.write(monitor, due_at, now, decisions)
        # a series whose write lost (another writer moved it on) acts on nothing this tick;
        # events always come with a write (they change the state)
        committed = [d for d in decisions if d.key in written or not d.write]
        result.notifications, result.storm = fleet_outbox.record_events(
            monitor, committed, due_at, now
        )
        if result.notifications:
            queue.enqueue_on_commit(result.notifications)
        if monitor.status != status or any(d.events for d in committed):
            live.changed_on_commit([monitor.owner_id], [monitor.pk])  # its grid shows it
    return written


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
    rules = (monitor.policy(), monitor.thresholds_at(now, time_zones.of(monitor)))
    judged: step.Judged = {}  # this tick's rules: the same value means the same outcome
    decisions = [
        _decide(
            monitor,
            key,
            known.get(key),
            observation,
            now,
            silenced or key in silenced_keys,
            (rules, judged),
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
    judging: tuple[tuple[ac.Policy, Thresholds], step.Judged],
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
        rules=judging[0],
        judged=judging[1],
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
    if step.significant(old, *policy) != step.significant(new, *policy):
        return True
    if value == row.last_value:
        return False
    if new.status is not ac.Status.OK or row.last_evaluated_at is None:
        return True  # a series in trouble shows its value as it moves
    return now.timestamp() - row.last_evaluated_at >= settings.FLEET_VALUE_REFRESH_SECONDS


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
