"""The dispatcher: claims due monitors and cuts them into per-source batches.

One statement claims and reschedules at once: due rows are locked with ``FOR UPDATE SKIP
LOCKED`` (so several dispatchers never claim the same monitor) and ``next_due_at`` advances in
the same UPDATE. Both happen in the narrow ``monitors_schedule`` table (one row per enabled
monitor), which is what keeps claiming 10,000 monitors cheap. A monitor on time keeps its
cadence (due + interval); one that fell behind is rescheduled from now rather than replaying
every missed tick.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction

logger = logging.getLogger(__name__)

_CLAIM = """
WITH due AS (
    SELECT monitor_id, next_due_at
    FROM monitors_schedule
    WHERE next_due_at <= %(now)s {owner_filter}
    ORDER BY next_due_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE monitors_schedule AS s
SET next_due_at = CASE
        WHEN due.next_due_at + s.interval > %(now)s THEN due.next_due_at + s.interval
        ELSE %(now)s::timestamptz + s.interval
    END
FROM due
WHERE s.monitor_id = due.monitor_id
RETURNING s.monitor_id, s.source_id,
    (extract(epoch FROM due.next_due_at) * 1000000)::bigint
"""
# Due times come back as exact epoch microseconds: Django's timestamptz loader is pure Python
# and took ~35 ms for 10,000 rows, a third of the whole claim.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Claimed:
    monitor_id: int
    source_id: int
    due_at: datetime


def claim_due(
    *, now: datetime, limit: int = 50_000, excluded_owner_ids: tuple[int, ...] = ()
) -> list[Claimed]:
    """Claims up to ``limit`` due monitors and advances their next_due_at (one statement)."""
    params: dict[str, Any] = {"now": now, "limit": limit}
    owner_filter = ""
    if excluded_owner_ids:
        owner_filter = "AND NOT (owner_id = ANY(%(excluded)s))"
        params["excluded"] = list(excluded_owner_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM.format(owner_filter=owner_filter), params)
        rows = cursor.fetchall()
    return [Claimed(m, s, _EPOCH + timedelta(microseconds=us)) for m, s, us in rows]


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
    from billing.gating import gated_owner_ids

    gated = tuple(gated_owner_ids(now))
    claimed = claim_due(now=now, limit=limit, excluded_owner_ids=gated)
    return batches(claimed, size=size, spread=spread)


_REPAIR = """
INSERT INTO monitors_schedule (monitor_id, owner_id, source_id, interval, next_due_at)
SELECT m.id, m.owner_id, m.source_id, m.interval, %(now)s
FROM monitors_monitor AS m
WHERE m.enabled
  AND NOT EXISTS (SELECT 1 FROM monitors_schedule AS s WHERE s.monitor_id = m.id)
ON CONFLICT (monitor_id) DO NOTHING
RETURNING monitor_id
"""


def repair_schedules(*, now: datetime) -> list[int]:
    """Gives every enabled monitor that has no Schedule row one, due ``now``; returns their
    ids. The database trigger should make this find nothing: each one found is a write that got
    around it (the trigger disabled, a restore, a row deleted by hand), so it is logged."""
    with connection.cursor() as cursor:
        cursor.execute(_REPAIR, {"now": now})
        repaired = [monitor_id for (monitor_id,) in cursor.fetchall()]
    if repaired:
        logger.warning(
            "%d enabled monitors had no schedule row (now due): %s", len(repaired), repaired[:20]
        )
    return repaired
