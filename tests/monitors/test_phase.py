"""Schedules keep their spread (issue 14): after an outage every monitor returns to its own
grid instead of collapsing onto ``now + interval``, and monitors created or resumed together
are spread over their first interval instead of all being due at once. Real Postgres: the
claim statement and the schedule trigger are what is tested."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitors import services
from monitors.evaluate import dispatch
from monitors.models import Monitor, Schedule, Source
from tests.factories import MonitorFactory, SourceFactory

TEN_SECONDS = timedelta(seconds=10)


def build_monitors(source: Source, count: int, *, interval: timedelta) -> list[Monitor]:
    return [
        MonitorFactory.build(owner=source.owner, source=source, interval=interval)
        for _ in range(count)
    ]


def bulk_monitors(source: Source, count: int, *, interval: timedelta) -> list[int]:
    built = build_monitors(source, count, interval=interval)
    return [m.pk for m in Monitor.objects.bulk_create(built)]


def spread_evenly(ids: list[int], *, start: datetime, over: timedelta) -> None:
    """Due times ``start + over * i / count`` for i = 1 … count, in id order: one interval's
    ticks, ``start + 1 s`` … ``start + over``, claim each once."""
    params: dict[str, Any] = {"start": start, "over": over, "count": float(len(ids)), "ids": ids}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE monitors_schedule AS s
            SET next_due_at = %(start)s::timestamptz + %(over)s::interval * (o.n / %(count)s)
            FROM (SELECT monitor_id, row_number() OVER (ORDER BY monitor_id) AS n
                  FROM monitors_schedule WHERE monitor_id = ANY(%(ids)s)) AS o
            WHERE s.monitor_id = o.monitor_id
            """,
            params,
        )


def dues(ids: list[int]) -> dict[int, datetime]:
    return dict(
        Schedule.objects.filter(monitor_id__in=ids).values_list("monitor_id", "next_due_at")
    )


def ticks(start: datetime, count: int) -> list[int]:
    """Claims once per second-slot, ``start + 1 s`` … ``start + count s``; the number each
    tick claimed."""
    return [len(dispatch.claim_due(now=start + timedelta(seconds=k))) for k in range(1, count + 1)]


def on_grid(before: datetime, after: datetime, step: timedelta) -> bool:
    return (after - before) % step == timedelta(0)


@pytest.mark.django_db
def test_after_an_outage_the_claims_keep_their_spread_and_each_monitor_its_grid() -> None:
    # the reported case: 2,000 monitors evenly over a 10 s interval, then a 60 s outage
    ids = bulk_monitors(SourceFactory(), 2000, interval=TEN_SECONDS)
    start = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    spread_evenly(ids, start=start, over=TEN_SECONDS)
    seeded = dues(ids)

    on_time = ticks(start, 10)  # one interval on time
    assert max(on_time) <= 1.5 * sum(on_time) / len(on_time)
    assert dues(ids) == {m: due + TEN_SECONDS for m, due in seeded.items()}  # cadence

    recovered = start + timedelta(seconds=10 + 60)  # the dispatcher was down for 60 s
    assert len(dispatch.claim_due(now=recovered)) == 2000  # every overdue monitor, once
    after = ticks(recovered, 10)  # the next interval

    assert sum(after) == 2000
    assert max(after) <= 1.5 * sum(after) / len(after), after
    for monitor_id, due in dues(ids).items():
        assert on_grid(seeded[monitor_id], due, TEN_SECONDS)
        assert recovered + TEN_SECONDS < due <= recovered + 2 * TEN_SECONDS


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("step", "late"),
    [
        (timedelta(seconds=13), timedelta(minutes=10, milliseconds=250)),
        (timedelta(seconds=17), timedelta(seconds=5 * 17)),  # exactly on a slot: the next one
        (timedelta(seconds=10), timedelta(seconds=3)),  # on time: due + interval
        (timedelta(days=1), timedelta(days=3, hours=5)),
    ],
)
def test_a_claimed_monitor_is_next_due_on_the_first_slot_of_its_grid_after_now(
    step: timedelta, late: timedelta
) -> None:
    now = timezone.now()
    due = now - late
    monitor = MonitorFactory(next_due_at=due, interval=step)

    [claimed] = dispatch.claim_due(now=now)

    assert claimed.due_at == due
    monitor.refresh_from_db()
    assert monitor.next_due_at == due + (late // step + 1) * step
    assert now < monitor.next_due_at <= now + step


@pytest.mark.django_db
def test_the_claim_that_isolates_a_failing_row_keeps_the_others_on_their_grid() -> None:
    now = timezone.now()
    late = MonitorFactory(next_due_at=now - timedelta(seconds=25), interval=TEN_SECONDS)
    planted = MonitorFactory(next_due_at=now - timedelta(seconds=1))
    with connection.cursor() as cursor:  # the claim statement fails on this row
        cursor.execute(
            "UPDATE monitors_schedule SET next_due_at = '-infinity' WHERE monitor_id = %s",
            [planted.pk],
        )

    claimed = dispatch.claim_due(now=now)

    assert [c.monitor_id for c in claimed] == [late.pk]
    late.refresh_from_db()
    assert late.next_due_at == now + timedelta(seconds=5)  # due - 25 s + 3 * 10 s
    planted.refresh_from_db()
    assert planted.next_due_at >= now + dispatch.PARK_FOR


@pytest.mark.django_db
def test_the_claim_is_still_one_statement() -> None:
    now = timezone.now()
    MonitorFactory.create_batch(3, next_due_at=now - timedelta(minutes=3))

    with CaptureQueriesContext(connection) as queries:
        assert len(dispatch.claim_due(now=now)) == 3

    assert len([q for q in queries if "monitors_schedule" in q["sql"]]) == 1


def per_slot(due_times: list[datetime], start: datetime, slot: timedelta) -> list[int]:
    counted = Counter((due - start) // slot for due in due_times)
    return [counted[k] for k in range(max(counted) + 1)]


@pytest.mark.django_db
def test_monitors_created_in_bulk_are_spread_over_their_first_interval() -> None:
    source = SourceFactory()
    built = build_monitors(source, 1000, interval=TEN_SECONDS)  # Python's time, not the spread's
    before = timezone.now()
    ids = [m.pk for m in Monitor.objects.bulk_create(built)]
    after = timezone.now()

    due = list(dues(ids).values())
    assert before <= min(due)
    assert max(due) < after + TEN_SECONDS
    counts = per_slot(due, before, timedelta(seconds=1))
    assert len(counts) in (10, 11), counts
    assert max(counts) <= 1.5 * 100, counts
    # and they stay spread: one claim per second over the next interval
    claims = [dispatch.claim_due(now=after + timedelta(seconds=k)) for k in range(1, 11)]
    assert {c.monitor_id for tick in claims for c in tick} == set(ids)
    assert max(len(tick) for tick in claims) <= 1.5 * 100


@pytest.mark.django_db
def test_a_long_interval_spreads_its_first_due_over_a_minute_only() -> None:
    source = SourceFactory()
    before = timezone.now()
    ids = bulk_monitors(source, 600, interval=timedelta(hours=1))
    after = timezone.now()

    due = list(dues(ids).values())
    assert before <= min(due)
    assert max(due) < after + dispatch.FIRST_DUE_SPREAD
    counts = per_slot(due, before, TEN_SECONDS)
    assert len(counts) in (6, 7), counts
    assert max(counts) <= 1.5 * 100, counts


@pytest.mark.django_db
def test_monitors_resumed_together_are_spread_and_each_is_due_within_its_interval() -> None:
    source = SourceFactory()
    ids = bulk_monitors(source, 500, interval=TEN_SECONDS)
    Monitor.objects.filter(pk__in=ids).update(enabled=False)
    before = timezone.now()
    Monitor.objects.filter(pk__in=ids).update(enabled=True)

    due = list(dues(ids).values())
    assert before <= min(due)
    assert max(due) < timezone.now() + TEN_SECONDS
    counts = per_slot(due, before, timedelta(seconds=1))
    assert max(counts) <= 1.5 * 50, counts


@pytest.mark.django_db
def test_a_monitor_created_or_resumed_by_its_user_is_first_due_within_a_minute() -> None:
    source = SourceFactory()
    fields: dict[str, Any] = {"name": "greenhouse", "measurement": "gro01", "field": "temperature"}
    before = timezone.now()
    hourly = services.monitor_create(
        owner=source.owner, source=source, critical=30, interval=timedelta(hours=1), **fields
    )
    quick = services.monitor_create(
        owner=source.owner, source=source, critical=30, interval=TEN_SECONDS, **fields
    )
    assert hourly.next_due_at is not None
    assert quick.next_due_at is not None
    assert before <= hourly.next_due_at < timezone.now() + dispatch.FIRST_DUE_SPREAD
    assert before <= quick.next_due_at < timezone.now() + TEN_SECONDS

    services.monitor_set_enabled(monitor=hourly, enabled=False)
    before = timezone.now()
    services.monitor_set_enabled(monitor=hourly, enabled=True)
    due = Schedule.objects.get(monitor_id=hourly.pk).next_due_at
    assert before <= due < timezone.now() + dispatch.FIRST_DUE_SPREAD
    assert hourly.next_due_at == due


@pytest.mark.django_db
def test_a_new_definition_is_still_checked_at_once() -> None:
    monitor = MonitorFactory(next_due_at=timezone.now() + timedelta(minutes=30))
    before = timezone.now()

    services.monitor_update(monitor=monitor, critical=45)

    due = Schedule.objects.get(monitor_id=monitor.pk).next_due_at
    assert before <= due <= timezone.now()
