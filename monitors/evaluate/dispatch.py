"""The dispatcher: claims due monitors and cuts them into per-source batches.

One statement claims and reschedules at once: due rows are locked with ``FOR UPDATE SKIP
LOCKED`` (so several dispatchers never claim the same monitor) and ``next_due_at`` advances in
the same UPDATE. Both happen in the narrow ``monitors_schedule`` table (one row per enabled
monitor), which is what keeps claiming 10,000 monitors cheap.

Each monitor keeps its phase. Its next due time is the first slot after now on its own grid
(``due + k * interval``): on time that is due + interval, its cadence; one that fell behind (a
dispatcher outage, an owner's service gated until payment) is evaluated once now and then
returns to its slot rather than replaying every missed tick. Rescheduling late monitors from
now instead collapsed them onto one instant: 2,000 monitors spread over 10 s were all due
within 61 ms after an outage, and stayed so (``bench/bench_phase.py``). The first claim after
an outage still takes every overdue monitor at once (up to ``limit``): delaying them further
would only make their alerts later; the spread is back from the next tick on.

New or resumed monitors do not arrive on one instant either: the schedule row a database
trigger writes for them is due at ``monitors_first_due_at`` (migration 0011), a deterministic
offset by id within ``min(interval, FIRST_DUE_SPREAD)`` of now, so the first evaluation comes
within a minute and 1,000 monitors created at once are spread over their first interval. A
monitor whose definition changed is due at once (``services._restart``): one user's edit,
answered by the next tick, which moves that monitor's phase to the moment of the edit.

One row cannot poison the claim for everyone: the step is the interval clamped to its bounds
(no stored value overflows a timestamp), and should the statement fail anyway the due rows are
claimed in halves down to the row that fails, which is parked (see ``claim_due``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Min
from django.utils import timezone

from billing.gating import gated_owner_ids
from monitors.models import MAX_INTERVAL, MIN_INTERVAL, Schedule, Status

logger = logging.getLogger(__name__)

# The step is the interval clamped to its bounds: a row planted past the CHECK constraint (or
# written before it) cannot make the statement overflow a timestamp and fail the whole claim.
# The next due time is the first slot after now on the monitor's own grid (anchored at the due
# time claimed): ``date_bin`` floors now onto that grid in integer microseconds (one C call per
# row, exact however far behind), and one step more is strictly after now. On time that is
# due + step; after an outage it is the slot the monitor would have had, so its phase is kept.
# The due time claimed is kept too (``claimed_due_at``: the label a polled transition is
# applied under, see the pipeline's ``_APPLY_POLLED``).
_CLAIM = """
WITH due AS (
    SELECT monitor_id, next_due_at,
        LEAST(GREATEST("interval", %(min_step)s), %(max_step)s) AS step
    FROM monitors_schedule
    WHERE {where}
    FOR UPDATE SKIP LOCKED
)
UPDATE monitors_schedule AS s
SET next_due_at = date_bin(due.step, %(now)s::timestamptz, due.next_due_at) + due.step,
    claimed_due_at = due.next_due_at
FROM due
WHERE s.monitor_id = due.monitor_id
RETURNING s.monitor_id, s.source_id,
    (extract(epoch FROM due.next_due_at) * 1000000)::bigint
"""
_DUE = "next_due_at <= %(now)s {owner_filter} ORDER BY next_due_at LIMIT %(limit)s"
_DUE_IDS = """
SELECT monitor_id FROM monitors_schedule
WHERE next_due_at <= %(now)s {owner_filter}
ORDER BY next_due_at LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""
# Due times come back as exact epoch microseconds: Django's timestamptz loader is pure Python
# and took ~35 ms for 10,000 rows, a third of the whole claim.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: how long a monitor that could not be claimed waits before it is tried again
PARK_FOR = timedelta(hours=1)
#: a new, resumed or repaired monitor is first due within min(interval, this) of then; the
#: window is written in SQL, in ``monitors_first_due_at`` (migration 0011)
FIRST_DUE_SPREAD = timedelta(seconds=60)
_PARK_SCHEDULE = "UPDATE monitors_schedule SET next_due_at = %s WHERE monitor_id = %s"
_PARK_MONITOR = """
UPDATE monitors_monitor
SET status = %(error)s, status_reason = %(reason)s, state_version = state_version + 1,
    status_changed_at = CASE WHEN status = %(error)s THEN status_changed_at ELSE %(now)s END
WHERE id = %(id)s
"""


class Claimed(NamedTuple):
    """A claimed monitor and the due time it was claimed for. A tuple: the dispatcher makes
    one per due monitor every second (10,000 took 8 ms as a frozen dataclass, 2 ms so, with
    each due time made once)."""

    monitor_id: int
    source_id: int
    due_at: datetime


def claim_due(
    *, now: datetime, limit: int = 50_000, excluded_owner_ids: tuple[int, ...] = ()
) -> list[Claimed]:
    """Claims up to ``limit`` due monitors and advances their next_due_at (one statement).

    Should that statement fail, one row cannot poison the claim: the due rows are locked and
    claimed again in halves (savepoints), down to the row that fails, which is parked: status
    ``error`` with a reason its owner reads, due again ``PARK_FOR`` later."""
    params: dict[str, Any] = {
        "now": now,
        "limit": limit,
        "min_step": MIN_INTERVAL,
        "max_step": MAX_INTERVAL,
    }
    owner_filter = ""
    if excluded_owner_ids:
        owner_filter = "AND NOT (owner_id = ANY(%(excluded)s))"
        params["excluded"] = list(excluded_owner_ids)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CLAIM.format(where=_DUE.format(owner_filter=owner_filter)), params)
            rows = cursor.fetchall()
    except (OperationalError, InterfaceError):
        raise  # the database is unreachable: nothing to isolate
    except DatabaseError:
        logger.exception("the claim failed as a whole; claiming row by row to isolate the cause")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_DUE_IDS.format(owner_filter=owner_filter), params)
            ids = [row[0] for row in cursor.fetchall()]
            rows = _claim_isolating(cursor, ids, params)
    due_at: dict[int, datetime] = {}  # a claim's rows share a few due times
    claimed: list[Claimed] = []
    for monitor_id, source_id, epoch_us in rows:
        at = due_at.get(epoch_us)
        if at is None:
            at = due_at[epoch_us] = _due_at(epoch_us, now)
        claimed.append(Claimed(monitor_id, source_id, at))
    return claimed


def _due_at(epoch_us: int, now: datetime) -> datetime:
    try:
        return _EPOCH + timedelta(microseconds=epoch_us)
    except OverflowError:  # a due time no Python datetime holds: it was due, it is due now
        return now


def _claim_isolating(
    cursor: CursorWrapper, ids: list[int], params: dict[str, Any]
) -> list[tuple[int, int, int]]:
    if not ids:
        return []
    try:
        with transaction.atomic():
            cursor.execute(_CLAIM.format(where="monitor_id = ANY(%(ids)s)"), {**params, "ids": ids})
            return list(cursor.fetchall())
    except (OperationalError, InterfaceError):
        raise
    except DatabaseError:
        if len(ids) > 1:
            half = len(ids) // 2
            return _claim_isolating(cursor, ids[:half], params) + _claim_isolating(
                cursor, ids[half:], params
            )
    _park(cursor, ids[0], params["now"])
    return []


def _park(cursor: CursorWrapper, monitor_id: int, now: datetime) -> None:
    """A monitor whose schedule row cannot be claimed: due again PARK_FOR from now (which also
    replaces an unreadable due time), status error with a reason, and a log line."""
    until = now + PARK_FOR
    logger.error("monitor %s could not be claimed; parked until %s", monitor_id, until)
    reason = (
        "this monitor could not be scheduled: its stored schedule was unreadable; "
        f"it will be checked again at {until:%H:%M} UTC"
    )
    try:
        with transaction.atomic():
            cursor.execute(_PARK_SCHEDULE, [until, monitor_id])
            values: dict[str, Any] = {
                "error": Status.ERROR,
                "reason": reason,
                "now": now,
                "id": monitor_id,
            }
            cursor.execute(_PARK_MONITOR, values)
    except (OperationalError, InterfaceError):
        raise
    except DatabaseError:
        logger.exception("monitor %s could not be parked either", monitor_id)


def batches(
    claimed: list[Claimed], *, size: int, spread: int = 1, min_size: int = 100
) -> list[list[Claimed]]:
    """Groups claimed monitors by source (one InfluxDB request each), at most ``size`` apiece.

    A large group is cut into at least ``spread`` batches (but none smaller than ``min_size``)
    so that one busy source keeps every worker process busy, not just one."""
    by_source: dict[int, list[Claimed]] = defaultdict(list)
    for item in claimed:
        by_source[item.source_id].append(item)
    cut: list[list[Claimed]] = []
    for group in by_source.values():
        count = max(-(-len(group) // size), min(spread, len(group) // min_size), 1)
        step = -(-len(group) // count)
        cut += [group[start : start + step] for start in range(0, len(group), step)]
    return cut


def claim_batches(
    *, now: datetime, size: int, spread: int = 1, limit: int = 50_000
) -> list[list[Claimed]]:
    """What the dispatcher does every second: claim every due monitor of an owner whose service
    is active (billing gating: unpaid owners' monitors wait, unclaimed, until payment) and cut
    them into per-source batches."""
    gated = tuple(gated_owner_ids(now))
    claimed = claim_due(now=now, limit=limit, excluded_owner_ids=gated)
    return batches(claimed, size=size, spread=spread)


def scheduler_lag_seconds() -> float:
    """Age of the oldest overdue monitor the dispatcher should have claimed (0 when none is
    overdue). Monitors of owners paused by billing wait on purpose and do not count."""
    oldest = (
        Schedule.objects.filter(next_due_at__lte=timezone.now())
        .exclude(owner_id__in=gated_owner_ids())
        .aggregate(oldest=Min("next_due_at"))["oldest"]
    )
    return 0.0 if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())


_REPAIR = """
INSERT INTO monitors_schedule (monitor_id, owner_id, source_id, interval, next_due_at)
SELECT m.id, m.owner_id, m.source_id, m.interval,
    monitors_first_due_at(m.id, m.interval, %(now)s::timestamptz)
FROM monitors_monitor AS m
WHERE m.enabled
  AND NOT EXISTS (SELECT 1 FROM monitors_schedule AS s WHERE s.monitor_id = m.id)
ON CONFLICT (monitor_id) DO NOTHING
RETURNING monitor_id
"""


def repair_schedules(*, now: datetime) -> list[int]:
    """Gives every enabled monitor that has no Schedule row one, due within
    ``min(interval, FIRST_DUE_SPREAD)`` of ``now`` like a new monitor (many repaired at once
    do not land on one tick); returns their ids. The database trigger should make this find
    nothing: each one found is a write that got around it (the trigger disabled, a restore, a
    row deleted by hand), so it is logged."""
    with connection.cursor() as cursor:
        cursor.execute(_REPAIR, {"now": now})
        repaired = [monitor_id for (monitor_id,) in cursor.fetchall()]
    if repaired:
        logger.warning(
            "%d enabled monitors had no schedule row (due again within a minute): %s",
            len(repaired),
            repaired[:20],
        )
    return repaired
