"""The dispatcher's claim against real Postgres: exactly-once claiming and rescheduling."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from monitors.evaluate import dispatch
from monitors.models import Schedule
from tests.factories import MonitorFactory, SourceFactory


@pytest.mark.django_db
def test_it_claims_only_due_enabled_monitors_and_advances_them_by_their_interval() -> None:
    now = timezone.now()
    due = MonitorFactory(next_due_at=now - timedelta(seconds=1), interval=timedelta(seconds=45))
    MonitorFactory(next_due_at=now + timedelta(seconds=5))
    MonitorFactory(next_due_at=now - timedelta(seconds=1), enabled=False)

    claimed = dispatch.claim_due(now=now)

    assert [c.monitor_id for c in claimed] == [due.pk]
    assert claimed[0].due_at == due.next_due_at
    due.refresh_from_db()
    assert due.next_due_at == claimed[0].due_at + timedelta(seconds=45)
    assert dispatch.claim_due(now=now) == []


@pytest.mark.django_db
def test_a_monitor_that_fell_behind_is_claimed_once_and_returns_to_its_grid() -> None:
    now = timezone.now()
    due = now - timedelta(minutes=10)
    late = MonitorFactory(next_due_at=due, interval=timedelta(seconds=17))

    assert [c.monitor_id for c in dispatch.claim_due(now=now)] == [late.pk]  # not replayed

    late.refresh_from_db()
    assert late.next_due_at == due + 36 * timedelta(seconds=17)  # 600 s = 35 steps + 5 s
    assert dispatch.claim_due(now=now) == []


@pytest.mark.django_db
def test_an_interval_that_does_not_divide_a_minute_keeps_its_own_cadence() -> None:
    start = timezone.now().replace(microsecond=0)
    monitor = MonitorFactory(next_due_at=start, interval=timedelta(seconds=13))
    seen = []

    for tick in range(0, 60):
        for claimed in dispatch.claim_due(now=start + timedelta(seconds=tick)):
            seen.append((claimed.due_at - start).total_seconds())

    assert seen == [0, 13, 26, 39, 52]
    monitor.refresh_from_db()
    assert monitor.next_due_at == start + timedelta(seconds=65)


@pytest.mark.django_db
def test_owners_excluded_by_billing_are_not_claimed() -> None:
    now = timezone.now()
    unpaid = MonitorFactory(next_due_at=now)
    paid = MonitorFactory(next_due_at=now)

    claimed = dispatch.claim_due(now=now, excluded_owner_ids=(unpaid.owner_id,))

    assert [c.monitor_id for c in claimed] == [paid.pk]


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_claiming_at_once_never_claim_the_same_monitor() -> None:
    now = timezone.now()
    source = SourceFactory()
    MonitorFactory.create_batch(300, owner=source.owner, source=source, next_due_at=now)
    results: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def claim(slot: int) -> None:
        barrier.wait()
        for _ in range(10):
            results[slot] += [c.monitor_id for c in dispatch.claim_due(now=now, limit=40)]
        connection.close()

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    everything = results[0] + results[1]
    assert len(everything) == len(set(everything)) == 300
    assert not Schedule.objects.filter(next_due_at__lte=now).exists()


def test_batches_are_cut_per_source_and_by_size() -> None:
    now = timezone.now()
    claimed = [dispatch.Claimed(i, source_id=i % 2, due_at=now) for i in range(7)]

    batches = dispatch.batches(claimed, size=2)

    assert sorted(len(b) for b in batches) == [1, 2, 2, 2]
    assert all(len({c.source_id for c in b}) == 1 for b in batches)


@pytest.mark.django_db
def test_pausing_takes_a_monitor_off_the_schedule_and_resuming_puts_it_back_due_soon() -> None:
    from monitors import services

    monitor = MonitorFactory(next_due_at=timezone.now() + timedelta(hours=1))
    assert Schedule.objects.filter(monitor=monitor).exists()

    services.monitor_set_enabled(monitor=monitor, enabled=False)
    assert not Schedule.objects.filter(monitor=monitor).exists()
    assert monitor.next_due_at is None

    before = timezone.now()
    services.monitor_set_enabled(monitor=monitor, enabled=True)
    schedule = Schedule.objects.get(monitor=monitor)
    assert before <= schedule.next_due_at < timezone.now() + dispatch.FIRST_DUE_SPREAD
    assert schedule.interval == monitor.interval
    soon = timezone.now() + dispatch.FIRST_DUE_SPREAD
    assert [c.monitor_id for c in dispatch.claim_due(now=soon)] == [monitor.pk]


def test_a_busy_source_is_spread_over_the_workers_but_small_ones_stay_whole() -> None:
    now = timezone.now()
    busy = [dispatch.Claimed(i, source_id=1, due_at=now) for i in range(1000)]
    quiet = [dispatch.Claimed(5000 + i, source_id=2, due_at=now) for i in range(150)]

    cut = dispatch.batches(busy + quiet, size=1000, spread=2)

    assert sorted(len(b) for b in cut) == [150, 500, 500]
    assert sorted(c.monitor_id for b in cut for c in b) == sorted(
        c.monitor_id for c in busy + quiet
    )
    assert [len(b) for b in dispatch.batches(busy, size=300, spread=2)] == [250, 250, 250, 250]
