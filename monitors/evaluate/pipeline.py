"""The evaluation pipeline: one batch of claimed monitors, one InfluxDB request, one transaction.

1. Load the batch (one query; monitors whose rows have not changed since the last tick are
   reused from this process, see ``evaluate.resident``), observe it (one InfluxDB request per
   source: see ``observe.observe_batch``), and run every monitor's observation through
   alerts_core's transition function (``step.step``). Nothing is written yet.
2. In one transaction: a conditional ``UPDATE … FROM (VALUES …)`` writes every new state, but
   only where the row still has the ``state_version`` we read and has not already applied this
   tick (``evaluated_due_at < due_at``). Most evaluations change nothing the next transition can
   tell apart and tell nobody: those write only their value, reason and tick (``_QUIET``, the
   same guards, the version left as it is), or nothing at all (below); the others are written
   whole (``_APPLY_POLLED``). The ids returned are the transitions that won; only those open or
   resolve incidents and write Notification rows (the outbox), in the same transaction. Two
   workers can therefore never both act on one transition, and a batch replayed after a crash
   changes nothing.
3. After commit, delivery is enqueued for the new outbox rows.

A steady tick writes nothing. A quiet evaluation that leaves its monitor ``ok``, not
alerting, with a value as its row already has one (``_settled``), writes no row: 10,000
monitors polled every second were 10,000 row updates a second that only moved a value, a
reason and two times. The row is refreshed on the monitor's own grid (``_refresh_due``: at most
``EVALUATION_ROW_REFRESH_SECONDS`` apart, 30 s by default, spread by id as the arrival path
spreads its refreshes), so a page, the API and ``monitor_evaluations`` show a value and a
"last evaluated" at most that old for a steady monitor; a monitor that is pending, firing,
warning, recovering, in error, or that loses or finds its data writes every tick as before,
and a change of state is written at once. A settled monitor's next passing tick is not even
decided again (``_settled_again``: the same decision, known from the state it settled from).
Nothing schedules or checks from the row's times:
overdue monitors, the scheduler lag and the health checks read the dispatcher's schedule
(``monitors_schedule.next_due_at``), which the claim advances every tick as before.

Without a write per tick the row's ``evaluated_due_at`` no longer names the newest tick
evaluated, only the newest written, and the tick guard alone would let a batch that comes late
(Celery redelivering a lost worker's task, or the next tick's batch overtaking it in another
process) count a tick after a newer one was evaluated quietly: two failing checks within one
interval. So:

- a decision that changes the state is applied under the newest tick the dispatcher has
  claimed for the monitor (``GREATEST(due_at, claimed_due_at)``, read from
  ``monitors_schedule`` in the same statement; the claim records it), still only where
  ``evaluated_due_at`` is older and the ``state_version`` is the one read. A late batch thus
  counts, once, the newest claimed tick that no write has counted: it is that tick's
  evaluation, made from the data as it is now (a quiet evaluation of that tick before it was
  a no-op by definition); the tick's own batch, should it come after, finds the tick taken.
  Each claimed tick changes the state at most once and in the order of the claims, as before;
  in steady lag every batch gets a tick of its own. What it costs: a batch overtaken by the
  next tick's claim takes that tick, so when two consecutive decisions of one monitor both
  change its state and the first commits after the next claim, the second waits for the tick
  after (a pending count one interval later);
- a decision that changes nothing and would write nothing is a no-op whatever its tick; one of
  a tick the row was already written with (a replay) is skipped, as the write's guard would
  have skipped it;
- ``state_version`` and ``revision`` are untouched by all this: two workers still never both
  act on one transition, and a monitor edited behind the worker's back is read again.

Decisions taken by the arrival evaluators (``commit_decisions``) are written as they come,
under their own reading times (``_APPLY``): they already write only on change.

No monitor can stop the others from being evaluated. The fast path above is unchanged; only
when a step fails does the batch fall back to narrower work: a load, an observation or a commit
that raises is retried in halves (savepoints) down to the monitor that causes it, and each
decision is taken inside its own ``try``. A monitor that cannot be loaded, queried, decided or
stored is written as status ``error`` with a reason its owner can read (``Broken``) and
logged with its id; every other monitor of the batch is evaluated as usual.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone

import alerts_core as ac
from monitors import live
from monitors.evaluate import arrival, fleet, phase, resident, step, time_zones
from monitors.evaluate.audience import deliverable_channels as deliverable_channels
from monitors.evaluate.audience import silenced_monitor_ids as silenced_monitor_ids
from monitors.evaluate.audience import silenced_series
from monitors.evaluate.step import Unevaluable, reason_for
from monitors.evaluate.thresholds import passes
from monitors.influxdb import client as influx
from monitors.influxdb import fleet as influx_fleet
from monitors.influxdb import observe
from monitors.influxdb.fleet import FleetObservation
from monitors.models import (
    Channel,
    Incident,
    Monitor,
    Notification,
    Source,
    Status,
    covering_silences,
)
from monitors.notify import queue
from monitors.notify.payload import Payload
from shared.links import absolute_url

logger = logging.getLogger(__name__)

MAX_POINTS = 60  # data points carried in a notification
# Columns evaluation never reads: not fetched for thousands of monitors a second.
_NOT_NEEDED = ("description", "created_at", "updated_at", "status_changed_at", "last_evaluated_at")

# The whole batch travels as one JSON parameter (client-side binding would otherwise quote
# thousands of values one by one).
_WHOLE = """
UPDATE monitors_monitor AS m
SET status = v.status,
    state = v.state,
    state_version = m.state_version + 1,
    status_reason = v.reason,
    status_changed_at = CASE WHEN m.status = v.status THEN m.status_changed_at ELSE %(now)s END,
    last_value = v.value,
    last_evaluated_at = %(now)s,
    evaluated_due_at = {tick}
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(
    id bigint, version bigint, due_at timestamptz, status text, state jsonb, reason text,
    value float8
){schedule}
WHERE m.id = v.id
  AND m.state_version = v.version
  AND (m.evaluated_due_at IS NULL OR m.evaluated_due_at < {tick})
RETURNING m.id, m.state_version, {fingerprint}
"""
# the row's fingerprint after the write: the worker keeps the monitor (``resident.written``).
# Decisions taken elsewhere (the arrival evaluators) are applied under their own tick.
_APPLY = _WHOLE.format(tick="v.due_at", schedule="", fingerprint=resident.FINGERPRINT)
# The poller's: under the newest tick the dispatcher has claimed for the monitor (never older
# than the decision's own). Quiet ticks write nothing, so the row no longer records the newest
# tick evaluated; the newest claimed one bounds it, and a batch that comes late (redelivered,
# or overtaken by the next tick's batch in another process) can count only a tick no write has
# counted yet, once: see the module docstring.
_APPLY_POLLED = _WHOLE.format(
    tick="GREATEST(v.due_at, s.claimed_due_at)",
    schedule="\nLEFT JOIN monitors_schedule AS s ON s.monitor_id = v.id",
    fingerprint=resident.FINGERPRINT,
)

# An evaluation that changes nothing the next transition can tell apart (``step.significant``)
# and tells nobody: its value, reason and tick only (``resident.QUIET_FIELDS``). The state and
# its version stay as they are, so the tick guard and the version check are the same as above.
_QUIET = """
UPDATE monitors_monitor AS m
SET status_reason = v.reason,
    last_value = v.value,
    last_evaluated_at = %(now)s,
    evaluated_due_at = v.due_at
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(
    id bigint, version bigint, due_at timestamptz, reason text, value float8
)
WHERE m.id = v.id
  AND m.state_version = v.version
  AND (m.evaluated_due_at IS NULL OR m.evaluated_due_at < v.due_at)
RETURNING m.id, m.state_version, NULL
"""


# Reasons a monitor's owner reads (status_reason) when it could not be evaluated (more in
# evaluation: UNREADABLE_STATE, UNEXPECTED and the out-of-range settings of reason_for).
UNLOADABLE = (
    "this monitor could not be evaluated: its stored settings could not be read; "
    "edit and save the monitor to fix it"
)
UNSTORABLE = (
    "this monitor could not be evaluated: its result could not be stored; "
    "it will be tried again at its next check"
)

_BROKEN = """
UPDATE monitors_monitor AS m
SET status = %(error)s,
    state = CASE WHEN v.reset THEN '{}'::jsonb ELSE m.state END,
    state_version = m.state_version + 1,
    status_reason = v.reason,
    status_changed_at = CASE WHEN m.status = %(error)s THEN m.status_changed_at ELSE %(now)s END,
    last_value = NULL,
    last_evaluated_at = %(now)s,
    evaluated_due_at = v.due_at
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(
    id bigint, version bigint, due_at timestamptz, reason text, reset boolean
)
WHERE m.id = v.id
  AND m.enabled
  AND (v.version IS NULL OR m.state_version = v.version)
  AND (m.evaluated_due_at IS NULL OR m.evaluated_due_at < v.due_at)
RETURNING m.owner_id
"""


@dataclass(frozen=True, slots=True)
class Broken:
    """A monitor that could not be evaluated: written as status error with ``reason``."""

    monitor_id: int
    version: int | None  # the state_version read; None when the row itself was unreadable
    due_at: datetime
    reason: str
    reset: bool = False  # its stored state is replaced by a fresh one


T = TypeVar("T")
# Not a monitor's fault: a lost database connection, the task's time limit. They propagate.
_NOT_ISOLATED = (OperationalError, InterfaceError, SoftTimeLimitExceeded)


def _isolate(
    items: list[T], attempt: Callable[[list[T]], None], failed: Callable[[T, Exception], None]
) -> None:
    """``attempt(items)``; should it raise, ``attempt`` each half, down to the single items
    that still fail, which go to ``failed``. One bad item among n costs about 2·log2(n) extra
    attempts; none costs nothing. A lost database connection is not isolated: it propagates."""
    if not items:
        return
    try:
        attempt(items)
    except _NOT_ISOLATED:
        raise
    except Exception as exc:
        if len(items) == 1:
            failed(items[0], exc)
            return
        half = len(items) // 2
        _isolate(items[:half], attempt, failed)
        _isolate(items[half:], attempt, failed)


@dataclass
class Decision:
    """One monitor's evaluation, decided but not yet written."""

    monitor: Monitor
    due_at: datetime
    observation: observe.Observation
    outcome: ac.Outcome
    state: ac.MonitorState
    events: list[ac.Event]
    points: list[list[Any]] = field(default_factory=list)
    previous: ac.MonitorState | None = None  # the state read; None: always written whole

    @property
    def notifying(self) -> list[ac.Event]:
        return [e for e in self.events if e.notifies]

    @cached_property  # asked by ``_settled`` and again by ``_apply``
    def quiet(self) -> bool:
        """Nothing to tell and nothing the next transition could tell apart: only the value,
        the reason and the tick are written (``_QUIET``), or nothing (``_settled``)."""
        if self.events or self.previous is None:
            return False
        rules = (self.monitor.pending_for, self.monitor.recover_after)
        return step.significant(self.previous, *rules) == step.significant(self.state, *rules)


@dataclass
class BatchResult:
    applied: int = 0
    skipped: int = 0  # another worker or an earlier run already applied that tick
    broken: int = 0  # could not be evaluated: written as status error with a reason
    outcomes: Counter[str] = field(default_factory=Counter)
    source_kind: str = ""  # hosted | customer: the batch's one source (its error metric)
    flavor: str = ""
    notifications: list[Any] = field(default_factory=list)  # ids of new outbox rows
    written: set[int] = field(default_factory=set)  # monitors whose decision was applied
    latencies: list[float] = field(default_factory=list)  # due -> committed, seconds
    # due -> committed for the evaluations that wrote outbox rows (the alert latency)
    alert_latencies: list[float] = field(default_factory=list)
    series: int = 0  # series of fleet monitors evaluated (each fleet monitor applies once)
    storms: int = 0  # fleet ticks whose changes went out as one message per channel

    def add(self, other: BatchResult) -> None:
        self.applied += other.applied
        self.series += other.series
        self.storms += other.storms
        self.skipped += other.skipped
        self.broken += other.broken
        self.outcomes.update(other.outcomes)
        self.notifications += other.notifications
        self.latencies += other.latencies
        self.alert_latencies += other.alert_latencies


def evaluate_batch(items: list[tuple[int, datetime]]) -> BatchResult:
    """Evaluates claimed monitors (``(monitor_id, due_at)`` pairs, one source) end to end."""
    due = dict(items)
    broken: list[Broken] = []
    monitors = _load(list(due), due, broken)
    if not monitors and not broken:
        return BatchResult(skipped=len(items))
    sources = Source.objects.in_bulk({m.source_id for m in monitors})  # one per batch
    cache_source = Monitor.source.field.set_cached_value  # the descriptor's checks: ~1 us each
    for monitor in monitors:
        cache_source(monitor, sources[monitor.source_id])
    time_zones.attach(monitors, refresh=True)  # one query, for monitors with a photoperiod
    fleets = [m for m in monitors if m.is_fleet]
    singles = [m for m in monitors if not m.is_fleet]
    observations = _observe(singles, due, broken)
    _record_phase(singles, observations)
    now = timezone.now()
    silenced = silenced_monitor_ids(monitors, now)
    handed = arrival.handed_over(singles, now)
    decisions = []
    again: list[datetime] = []  # the due ticks of the evaluations settled again
    left_to_arrival = 0
    for monitor in singles:
        observation = observations.get(monitor.id)
        if observation is None:
            continue  # could not be observed: already among the broken
        if monitor.id in handed and observation.value is not None:
            left_to_arrival += 1  # its readings are decided as they arrive (evaluate.arrival)
            continue
        if _settled_again(monitor, observation, due[monitor.id], monitor.id in silenced):
            again.append(due[monitor.id])
            continue
        try:
            decisions.append(
                _decide(monitor, due[monitor.id], observation, now, monitor.id in silenced)
            )
        except _NOT_ISOLATED:
            raise
        except Exception as exc:
            logger.exception("monitor %s could not be evaluated", monitor.id, extra=_ids(monitor))
            broken.append(_broken(monitor, due[monitor.id], reason_for(monitor, exc), exc))
    try:
        _attach_points(decisions, now)
    except _NOT_ISOLATED:
        raise
    except Exception:  # the points only illustrate notifications: send them without
        logger.exception("points for a batch of %d monitors failed", len(decisions))
    result = BatchResult()
    if sources:
        source = next(iter(sources.values()))
        result.source_kind, result.flavor = _kind(source), source.flavor
    unwritten, replayed, decisions = _unwritten(decisions)
    result.add(_evaluated(unwritten, again, skipped=len(replayed)))
    _isolate(
        decisions,
        lambda part: result.add(_commit(part, now, polled=True)),
        lambda d, exc: _unstorable(d, exc, broken),
    )
    if fleets:
        _evaluate_fleets(fleets, due, now, silenced, broken, result)
    if broken:
        result.broken = _write_broken(broken, now)
        result.outcomes["error"] += result.broken  # counted in the evaluations-by-outcome metric
    result.skipped += len(items) - len(monitors) - sum(b.version is None for b in broken)
    result.skipped += left_to_arrival
    return result


# Each monitor's refreshes fall on its own grid of EVALUATION_ROW_REFRESH_SECONDS, offset by
# its id (the golden ratio's fraction spreads consecutive ids evenly): 10,000 monitors loaded
# on one tick do not all refresh on one later tick.
_SPREAD = 0.6180339887498949


def _unwritten(
    decisions: list[Decision],
) -> tuple[list[Decision], list[Decision], list[Decision]]:
    """Splits the batch's decisions into those that write nothing (quiet, settled, told
    nobody and not due a refresh: the row already says all a page must show), those of a tick
    the row has already been written with (a replay: nothing to do, as the write's tick guard
    would decide) and those to write."""
    every = settings.EVALUATION_ROW_REFRESH_SECONDS
    if every <= 0:
        return [], [], decisions
    unwritten: list[Decision] = []
    replayed: list[Decision] = []
    written: list[Decision] = []
    for d in decisions:
        row_s = resident.written_s(d.monitor)
        if row_s is None or not _settled(d):
            written.append(d)
            continue
        tick = _steady_tick(d.monitor.id, row_s, d.due_at.timestamp(), every)
        if tick == "replay":
            replayed.append(d)
        elif tick == "refresh":
            written.append(d)
        else:
            unwritten.append(d)
            if d.outcome.kind is ac.OutcomeKind.PASSED and d.previous is not None:
                resident.settle(d.monitor, d.previous, silenced=d.state.silenced)
    return unwritten, replayed, written


def _steady_tick(
    monitor_id: int, row_s: float, due_s: float, every: float
) -> Literal["replay", "refresh", "unwritten"]:
    """What a settled decision of the tick due at ``due_s`` does to a row last written with the
    tick ``row_s``: nothing for a tick already written (``replay``), the quiet write once the
    monitor's refresh grid line has passed (``refresh``), else nothing (``unwritten``)."""
    if due_s <= row_s:
        return "replay"
    return "refresh" if _refresh_due(monitor_id, row_s, due_s, every) else "unwritten"


def _settled_again(
    monitor: Monitor, observation: observe.Observation, due_at: datetime, silenced: bool
) -> bool:
    """The decision ``_unwritten`` would leave unwritten, known without taking it: the
    monitor's last evaluation passed and settled from the state it still has (``resident.
    settle``), this value passes its thresholds too, it is silenced as it was then, and this
    tick is neither a replay nor due a refresh. alerts_core's transition is pure, and from a
    state that is ok and not alerting a passing outcome changes nothing but the counts, the
    value and the reason, whatever the value and the moment; so this decision is that one
    again, and the transition, the reason's text and the decision are not built (10,000
    steady monitors polled every second: ~8 us of each one's ~50 us, cProfile)."""
    settled = resident.settled(monitor)
    every = settings.EVALUATION_ROW_REFRESH_SECONDS
    if settled is None or every <= 0 or observation.error is not None:
        return False
    value = observation.value
    return (
        value is not None
        and silenced == settled.silenced
        and passes(value, settled.thresholds)
        and _steady_tick(monitor.id, settled.written_s, due_at.timestamp(), every) == "unwritten"
    )


def _settled(d: Decision) -> bool:
    """Nothing a page or the next transition must see: a quiet decision (``Decision.quiet``)
    that leaves the monitor ok, not alerting, with a value as the row already has one (a
    monitor in trouble, or one losing or finding its data, shows its value as it moves)."""
    return (
        d.state.status is ac.Status.OK
        and not d.state.alerting
        and d.observation.value is not None
        and d.monitor.last_value is not None
        and d.quiet
    )


def _refresh_due(monitor_id: int, row_s: float, due_s: float, every: float) -> bool:
    """The monitor's refresh grid (``_SPREAD``) has a line between the tick its row was last
    written with and this one: at most ``every`` seconds between two writes of a steady row."""
    offset = (monitor_id * _SPREAD) % 1.0 * every
    return (row_s + offset) // every != (due_s + offset) // every


def _evaluated(unwritten: list[Decision], again: list[datetime], *, skipped: int) -> BatchResult:
    """Evaluations done that wrote nothing (``again``: the due ticks of those settled again,
    all ok): counted as applied (in the metrics and the latencies), as their write would have
    been."""
    finished = timezone.now()
    outcomes = Counter(d.state.status.value for d in unwritten)
    if again:
        outcomes[Status.OK.value] += len(again)
    due = [d.due_at for d in unwritten] + again
    return BatchResult(
        applied=len(due),
        skipped=skipped,
        outcomes=outcomes,
        latencies=[max(0.0, (finished - at).total_seconds()) for at in due],
    )


def _record_phase(monitors: list[Monitor], observations: dict[int, observe.Observation]) -> None:
    """The instant the batch's data lands (``evaluate.phase``): the times of the newest points,
    which only a structured ``last`` answers with (other aggregates answer with the window's
    start)."""
    times = [
        at
        for m in monitors
        if m.aggregation == "last"
        and not m.raw_query
        and (at := getattr(observations.get(m.id), "at_ms", None)) is not None
    ]
    if times:
        phase.record(monitors[0].source_id, times)


def _kind(source: Source) -> str:
    return "hosted" if source.hosted else "customer"


def _evaluate_fleets(
    fleets: list[Monitor],
    due: dict[int, datetime],
    now: datetime,
    silenced: set[int],
    broken: list[Broken],
    result: BatchResult,
) -> None:
    """Fleet monitors (``evaluate.fleet``): their grouped statements in one request, then
    each monitor's series in its own transaction; one that fails is broken, alone."""
    observed: dict[int, FleetObservation] = {}

    def failed(monitor: Monitor, exc: Exception) -> None:
        logger.error("monitor %s could not be observed: %r", monitor.id, exc, extra=_ids(monitor))
        broken.append(_broken(monitor, due[monitor.id], reason_for(monitor, exc), exc))

    _isolate(fleets, lambda part: observed.update(influx_fleet.observe_fleets(part)), failed)
    # the owners' time zones, for the times their notifications show: one query for the batch
    time_zones.attach([m for m in fleets if m.id in observed], refresh=True, every=True)
    series_silenced = silenced_series(list(observed), now)
    for monitor in fleets:
        observation = observed.get(monitor.id)
        if observation is None:
            continue
        try:
            done = fleet.evaluate(
                monitor,
                due[monitor.id],
                observation,
                now,
                silenced=monitor.id in silenced,
                silenced_keys=series_silenced.get(monitor.id, set()),
            )
        except _NOT_ISOLATED:
            raise
        except Exception as exc:
            logger.exception("monitor %s could not be evaluated", monitor.id, extra=_ids(monitor))
            broken.append(_broken(monitor, due[monitor.id], reason_for(monitor, exc), exc))
            continue
        if not done.applied:
            result.skipped += 1
            continue
        latency = max(0.0, (timezone.now() - due[monitor.id]).total_seconds())
        result.applied += 1
        result.series += done.series
        result.storms += done.storm
        result.outcomes.update(done.outcomes)
        result.notifications += done.notifications
        result.latencies.append(latency)
        if done.notifications:
            result.alert_latencies.append(latency)


def _ids(monitor: Monitor) -> dict[str, int]:
    """A log line's monitor and account (observability.logs puts them in JSON lines)."""
    return {"monitor_id": monitor.id, "account_id": monitor.owner_id}


def _load(ids: list[int], due: dict[int, datetime], broken: list[Broken]) -> list[Monitor]:
    """The batch's enabled monitors (one query); a row that cannot be read is broken."""
    monitors: list[Monitor] = []

    def load(part: list[int]) -> None:
        # The ids as one array parameter: an IN list of 1,000 placeholders costs more to build
        # and bind than the query takes to run.
        with transaction.atomic():
            monitors.extend(resident.load(part, _load_rows))

    def unreadable(pk: int, exc: Exception) -> None:
        logger.error("monitor %s could not be loaded: %r", pk, exc, extra={"monitor_id": pk})
        broken.append(Broken(pk, None, due[pk], UNLOADABLE))

    _isolate(ids, load, unreadable)
    return monitors


def _load_rows(ids: list[int]) -> list[Monitor]:
    """Whole rows, as evaluation reads them (one query; the ids as one array parameter: an IN
    list of 1,000 placeholders costs more to build and bind than the query takes to run)."""
    in_ids = RawSQL("SELECT unnest(%s::bigint[])", (ids,))
    return list(Monitor.objects.filter(pk__in=in_ids, enabled=True).defer(*_NOT_NEEDED))


def _observe(
    monitors: list[Monitor], due: dict[int, datetime], broken: list[Broken]
) -> dict[int, observe.Observation]:
    """One InfluxDB request for the batch; a monitor whose query cannot even be built (or
    whose answer cannot be read) is broken, the others are observed."""
    observed: dict[int, observe.Observation] = {}

    def failed(monitor: Monitor, exc: Exception) -> None:
        logger.error("monitor %s could not be observed: %r", monitor.id, exc, extra=_ids(monitor))
        broken.append(_broken(monitor, due[monitor.id], reason_for(monitor, exc), exc))

    _isolate(monitors, lambda part: observed.update(observe.observe_batch(part)), failed)
    return observed


def _decide(
    monitor: Monitor,
    due_at: datetime,
    observation: observe.Observation,
    now: datetime,
    silenced: bool,
) -> Decision:
    try:
        state = resident.alert_state(monitor)
    except Exception as exc:
        raise Unevaluable(step.UNREADABLE_STATE, reset=True) from exc
    new_state, events, outcome = step.step(
        monitor,
        state,
        value=observation.value,
        error=observation.error,
        now=now,
        silenced=silenced,
        rules=resident.rules(monitor),
    )
    return Decision(monitor, due_at, observation, outcome, new_state, events, previous=state)


def _broken(monitor: Monitor, due_at: datetime, reason: str, exc: Exception) -> Broken:
    reset = isinstance(exc, Unevaluable) and exc.reset
    return Broken(monitor.id, monitor.state_version, due_at, reason, reset)


def _unstorable(d: Decision, exc: Exception, broken: list[Broken]) -> None:
    logger.error(
        "the evaluation of monitor %s could not be stored: %r",
        d.monitor.id,
        exc,
        extra=_ids(d.monitor),
    )
    broken.append(_broken(d.monitor, d.due_at, reason_for(d.monitor, exc, default=UNSTORABLE), exc))


def _write_broken(broken: list[Broken], now: datetime) -> int:
    """Status error with its reason for every broken monitor (one statement; notifies nobody).
    Returns how many were written (a row another run moved on is left alone)."""
    rows = [
        {
            "id": b.monitor_id,
            "version": b.version,
            "due_at": b.due_at.isoformat(),
            "reason": b.reason,
            "reset": b.reset,
        }
        for b in broken
    ]
    params: dict[str, Any] = {"error": Status.ERROR.value, "now": now, "rows": json.dumps(rows)}
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_BROKEN, params)
            owners = [row[0] for row in cursor.fetchall()]
            live.changed_on_commit(owners, [b.monitor_id for b in broken])
            return len(owners)
    except _NOT_ISOLATED:
        raise
    except Exception:
        logger.exception(
            "monitors %s could not be marked as errors", [b.monitor_id for b in broken]
        )
        return 0


def _attach_points(decisions: list[Decision], now: datetime) -> None:
    """Notifications explain themselves with the evaluated points. Fetched before the
    transaction opens, in one request, and only for monitors that will notify a channel."""
    wanted = {
        d.monitor.id: d
        for d in decisions
        if d.notifying and not d.monitor.raw_query and d.observation.error is None
    }
    if not wanted:
        return
    with_channels = set(
        Monitor.channels.through.objects.filter(
            monitor_id__in=wanted, channel__enabled=True, channel__verified=True
        ).values_list("monitor_id", flat=True)
    )
    monitors = [wanted[pk].monitor for pk in wanted if pk in with_channels]
    try:
        found = observe.recent_points(monitors, end=now, limit=MAX_POINTS)
    except influx.InfluxError as exc:
        logger.warning("points for %d notifications unavailable: %s", len(monitors), exc)
        return
    for pk, points in found.items():
        wanted[pk].points = [[_iso_ms(t), v] for t, v in points]


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.get_current_timezone()).isoformat()


def _rows(decisions: list[Decision], *, whole: bool) -> str:
    """The decisions as one JSON parameter; ``whole``: with their status and state."""
    rows = []
    for d in decisions:
        row = {
            "id": d.monitor.id,
            "version": d.monitor.state_version,
            "due_at": d.due_at.isoformat(),
            "reason": d.outcome.message[:500],
            "value": d.observation.value,
        }
        if whole:
            row["status"] = d.state.status.value
            row["state"] = d.state.to_dict()
        rows.append(row)
    return json.dumps(rows)


def _apply(
    decisions: list[Decision], now: datetime, *, polled: bool = False
) -> dict[int, tuple[int, int | None]]:
    """Writes the decisions (changed ones whole, quiet ones narrow); returns the state_version
    of each row written (the others were taken by another run, or moved on) and, for a whole
    write, the row's new revision (``resident.FINGERPRINT``). ``polled``: the poller's own,
    changed ones applied under the newest tick claimed (``_APPLY_POLLED``)."""
    quiet: list[Decision] = []
    changed: list[Decision] = []
    for d in decisions:
        (quiet if d.quiet else changed).append(d)
    won: dict[int, tuple[int, int | None]] = {}
    whole_statement = _APPLY_POLLED if polled else _APPLY
    with connection.cursor() as cursor:
        for statement, part, whole in ((whole_statement, changed, True), (_QUIET, quiet, False)):
            if part:
                cursor.execute(statement, {"now": now, "rows": _rows(part, whole=whole)})
                won.update((pk, (version, print_)) for pk, version, print_ in cursor.fetchall())
    return won


def commit_decisions(
    decisions: list[Decision],
    now: datetime,
    *,
    enqueue: Callable[[list[Any]], None] = queue.enqueue_on_commit,
) -> BatchResult:
    """Writes decisions taken elsewhere (the arrival evaluators, devices/arrival) exactly as the
    poller writes its own: one transaction, the conditional update keyed on ``state_version``
    and ``evaluated_due_at < due_at``, incidents and the outbox for the transitions that won.
    A decision whose row moved on meanwhile is not applied (``BatchResult.skipped``).
    ``enqueue`` is handed the new outbox rows' ids inside the transaction (by default they are
    queued for delivery once it commits)."""
    return _commit(decisions, now, enqueue=enqueue)


def _commit(
    decisions: list[Decision],
    now: datetime,
    *,
    enqueue: Callable[[list[Any]], None] = queue.enqueue_on_commit,
    polled: bool = False,
) -> BatchResult:
    result = BatchResult()
    read = [(d.monitor, d.monitor.state_version) for d in decisions]
    try:
        with transaction.atomic():
            won = _apply(decisions, now, polled=polled)
            committed = [d for d in decisions if d.monitor.id in won]
            for d in committed:
                d.monitor.state_version = won[d.monitor.id][0]
            notifications = _record_events(committed, now)
            shown = [d for d in committed if d.events or d.monitor.status != d.state.status.value]
            live.changed_on_commit(
                (d.monitor.owner_id for d in shown), [d.monitor.id for d in shown]
            )
            result.notifications = [n.pk for n in notifications]
            if result.notifications:
                enqueue(result.notifications)
    except BaseException:
        for monitor, version in read:  # rolled back: the versions read are current again
            monitor.state_version = version
        raise
    for d in committed:
        fingerprint = won[d.monitor.id][1]
        if fingerprint is not None:  # written whole: the worker keeps the row it left
            resident.written(d.monitor, d.state, fingerprint)
        if polled:  # what the row now shows (a kept monitor is not read again after a quiet write)
            d.monitor.last_value = d.observation.value
    finished = timezone.now()
    result.applied = len(committed)
    result.written = {d.monitor.id for d in committed}
    result.skipped = len(decisions) - len(committed)
    result.outcomes = Counter(d.state.status.value for d in committed)
    result.latencies = [max(0.0, (finished - d.due_at).total_seconds()) for d in committed]
    notified = {n.monitor_id for n in notifications}
    result.alert_latencies = [
        max(0.0, (finished - d.due_at).total_seconds())
        for d in committed
        if d.monitor.id in notified
    ]
    return result


def _record_events(committed: list[Decision], now: datetime) -> list[Notification]:
    """Incidents open and resolve with the state (in bulk: a storm of firing monitors is a few
    statements, not one per monitor); each notifying event gets one outbox row per deliverable
    channel (a stable idempotency key makes a replay harmless)."""
    decisions = [d for d in committed if d.events]
    _track_peaks(committed)
    if not decisions:
        return []
    open_incidents = {
        i.monitor_id: i
        for i in Incident.objects.filter(
            monitor_id__in=[d.monitor.id for d in decisions], resolved_at=None
        )
    }
    opened: list[Incident] = []
    resolved: list[Incident] = []
    told: list[tuple[Decision, ac.Event, Incident | None]] = []
    held: list[tuple[Decision, ac.Event, Incident | None]] = []
    for d in decisions:
        # One decision of the arrival path may carry several transitions (fired, resolved,
        # fired again within one stream read): a resolved incident is done with, the next
        # firing opens its own.
        incident = open_incidents.get(d.monitor.id)
        for event in d.events:
            if event.kind is ac.EventKind.FIRED and not event.catch_up and incident is None:
                incident = Incident(
                    monitor=d.monitor,
                    opened_at=now,
                    opened_value=event.value,
                    peak_value=event.value,
                    last_value=event.value,
                    summary=event.message[:500],
                )
                opened.append(incident)
            elif event.kind is ac.EventKind.RESOLVED and not event.catch_up and incident:
                incident.resolved_at = now
                incident.last_value = event.value
                resolved.append(incident)
            if event.notifies and not (incident and incident.hushes(event.kind.value)):
                told.append((d, event, incident))
            elif d.state.silenced and event.kind in HELD_KINDS:
                held.append((d, event, incident))
            if incident is not None and incident.resolved_at is not None:
                incident = None
    Incident.objects.bulk_create(opened)
    Incident.objects.bulk_update(resolved, ["resolved_at", "last_value"])
    if not told and not held:
        return []
    channels = deliverable_channels({d.monitor.id for d, _, _ in told + held})
    # the owners' time zones, for the times the messages show: one query for the batch
    told_monitors = {d.monitor.id: d.monitor for d, _, _ in told}.values()
    time_zones.attach(told_monitors, refresh=True, every=True)
    rows = [
        _notification(d, event, incident, channel)
        for d, event, incident in told
        for channel in channels.get(d.monitor.id, [])
    ]
    _log_held(held, channels, now)
    return Notification.objects.bulk_create(rows, ignore_conflicts=True) if rows else []


# What a silence holds back and its owner reads in the monitor's log (catch-ups, flapping and
# stops are told or explained elsewhere).
HELD_KINDS = frozenset(
    {
        ac.EventKind.FIRED,
        ac.EventKind.RESOLVED,
        ac.EventKind.WARNING_RAISED,
        ac.EventKind.WARNING_CLEARED,
    }
)


def _log_held(
    held: list[tuple[Decision, ac.Event, Incident | None]],
    channels: dict[int, list[Channel]],
    now: datetime,
) -> None:
    """One outbox row per channel that a silence kept from being told, written as
    ``suppressed``: never delivered, shown in the monitor's notification log."""
    if not held:
        return
    until = _silence_ends({d.monitor.id for d, _, _ in held}, now)
    rows = []
    for d, event, incident in held:
        for channel in channels.get(d.monitor.id, []):
            row = _notification(d, event, incident, channel)
            row.idempotency_key += ":held"
            row.status = Notification.DeliveryStatus.SUPPRESSED
            ends = until.get(d.monitor.id)
            row.last_error = "silenced" + (
                f" until {timezone.localtime(ends):%Y-%m-%d %H:%M}" if ends else ""
            )
            rows.append(row)
    Notification.objects.bulk_create(rows, ignore_conflicts=True)


def _silence_ends(monitor_ids: set[int], now: datetime) -> dict[int, datetime]:
    """When the silence that holds each monitor ends (the last-ending one covering it)."""
    monitors = Monitor.objects.filter(pk__in=monitor_ids).values_list("pk", "owner_id")
    owners = dict(monitors)
    ends: dict[int, datetime] = {}
    current = [
        (s.owner_id, s.monitor_id, window[1])
        for s in covering_silences(set(owners.values()), now)
        if (window := s.window_at(now))
    ]
    for owner_id, monitor_id, end in current:
        covered = [monitor_id] if monitor_id else [m for m, o in owners.items() if o == owner_id]
        for pk in covered:
            if pk in owners and (pk not in ends or end > ends[pk]):
                ends[pk] = end
    return ends


_PEAKS = """
UPDATE monitors_incident AS i
SET last_value = v.value,
    peak_value = CASE
        WHEN i.peak_value IS NULL
          OR (v.below AND v.value < i.peak_value)
          OR (NOT v.below AND v.value > i.peak_value) THEN v.value
        ELSE i.peak_value
    END
FROM jsonb_to_recordset(%s::jsonb) AS v(monitor_id bigint, value float8, below boolean)
WHERE i.monitor_id = v.monitor_id AND i.resolved_at IS NULL
"""


def _track_peaks(committed: list[Decision]) -> None:
    """Open incidents follow their monitor's value and remember the worst: one statement."""
    rows = [
        {
            "monitor_id": d.monitor.id,
            "value": d.observation.value,
            "below": d.monitor.comparator == "below",
        }
        for d in committed
        if d.state.alerting and d.observation.value is not None
    ]
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(_PEAKS, [json.dumps(rows)])


def _notification(
    d: Decision, event: ac.Event, incident: Incident | None, channel: Channel
) -> Notification:
    """The outbox row of ``event`` for ``channel``. Its key is the state version the decision
    wrote, the event's kind and the channel; a kind that happens again in the same decision (the
    arrival path decides every reading of a stream read in one write: fired, resolved, fired)
    adds which time it is (``:n2``). The same entries decided again give the same events in the
    same order, so a replay gives the same keys."""
    key = f"m{d.monitor.id}:v{d.monitor.state_version}:{event.kind.value}:c{channel.pk}"
    earlier = d.events[: next(i for i, e in enumerate(d.events) if e is event)]
    occurrence = 1 + sum(1 for e in earlier if e.kind is event.kind)
    if occurrence > 1:
        key += f":n{occurrence}"
    return Notification(
        monitor=d.monitor,
        incident=incident,
        channel=channel,
        event=event.kind.value,
        idempotency_key=key,
        payload=payload(d, event, incident),
    )


def payload(d: Decision, event: ac.Event, incident: Incident | None) -> dict[str, Any]:
    """The notification payload (documented in docs/notifications.md)."""
    monitor = d.monitor
    warned = event.kind in (ac.EventKind.WARNING_RAISED, ac.EventKind.WARNING_CLEARED)
    t = monitor.thresholds_at(event.at, time_zones.of(monitor))  # the night's, at night
    resolved_at = incident.resolved_at if incident else None
    duration: timedelta | None = (
        (resolved_at - incident.opened_at) if incident and resolved_at else None
    )
    return Payload(
        event=event.kind.value,
        occurred_at=event.at,
        monitor={
            "id": monitor.id,
            "name": monitor.name,
            "url": absolute_url(reverse("pages:monitor", args=[monitor.id])),
        },
        status=event.status.value,
        previous_status=event.previous_status.value,
        reason=event.message,
        value=event.value,
        threshold=t.warning if warned else t.critical,
        threshold_kind="warning" if warned else "critical",
        threshold_high=t.warning_high if warned else t.critical_high,
        comparator=monitor.comparator,
        aggregation=monitor.aggregation,
        window_seconds=monitor.window.total_seconds(),
        query=observe.shown_query(d.monitor, d.observation),
        incident=None
        if incident is None
        else {
            "id": incident.pk,
            "opened_at": incident.opened_at.isoformat(),
            "resolved_at": resolved_at.isoformat() if resolved_at else None,
            "duration_seconds": duration.total_seconds() if duration else None,
        },
        points=d.points,
        unit=monitor.unit,
        precision=monitor.precision,
        tags=dict(monitor.tags or {}),
        failing_since=_failing_since(d, event, incident),
        time_zone=time_zones.shown(monitor),
    ).as_json()


def _failing_since(d: Decision, event: ac.Event, incident: Incident | None) -> datetime | None:
    """When the failing began: the first of the failing checks that fired it, or the incident's
    opening for a later event."""
    if event.kind is ac.EventKind.FIRED and not event.catch_up:
        return event.at - d.monitor.interval * max(0, d.state.failures - 1)
    return incident.opened_at if incident is not None else None


def record_stopped(
    monitor: Monitor, state: ac.MonitorState, events: list[ac.Event], now: datetime
) -> list[Any]:
    """A pause or a new definition (alerts_core's ``pause`` / ``redefine``) ends the monitor's
    open incident, saying why, and tells its channels through the outbox as an evaluation
    would: rows written in the caller's transaction (which holds the monitor's row and has
    moved its ``state_version`` on, so the keys are new), delivery enqueued after commit.
    Returns the new outbox rows' ids."""
    if not events:
        return []
    incident = Incident.objects.filter(monitor=monitor, resolved_at=None).first()
    if incident is not None:
        why = f" — {events[0].message}"
        incident.resolved_at = now
        incident.summary = incident.summary[: 500 - len(why)] + why
        incident.save(update_fields=["resolved_at", "summary"])
    told = [e for e in events if e.notifies]
    channels = deliverable_channels({monitor.id}).get(monitor.id, []) if told else []
    if not channels:
        return []
    observation = observe.Observation(None, value=monitor.last_value)
    outcome = ac.Outcome.passed(monitor.last_value, events[0].message)
    decision = Decision(monitor, now, observation, outcome, state, events)
    rows = [_notification(decision, e, incident, c) for e in told for c in channels]
    created = Notification.objects.bulk_create(rows, ignore_conflicts=True)
    ids = [n.pk for n in created]
    queue.enqueue_on_commit(ids)
    return ids
