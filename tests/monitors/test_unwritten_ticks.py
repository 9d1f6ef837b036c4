"""A polling tick that changes nothing writes nothing: a settled monitor's row is refreshed on
its own grid (``EVALUATION_ROW_REFRESH_SECONDS``), and a decision that changes the state is
applied under the newest tick claimed, so a stale, replayed or overtaken batch never counts a
tick twice nor tells anyone twice (monitors/evaluate/pipeline.py). Real Postgres and InfluxDB;
due times are set by hand, as the dispatcher would claim them."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from monitors import operations
from monitors.evaluate import dispatch, pipeline, resident
from monitors.models import Monitor, Notification, Schedule, Status
from monitors.status_words import status_words
from tests.monitors.test_quiet_writes import last_value_monitor as last_value_monitor
from tests.monitors.test_quiet_writes import write

pytestmark = pytest.mark.django_db

Items = list[tuple[int, datetime]]


@pytest.fixture(autouse=True)
def refresh_every_30_s(settings) -> None:
    settings.EVALUATION_ROW_REFRESH_SECONDS = 30.0


def cell_start(monitor: Monitor) -> datetime:
    """The start of the monitor's current refresh cell (``pipeline._refresh_due``): ticks
    from it to 29 s later write nothing once settled, one 30 s later refreshes the row."""
    every = settings.EVALUATION_ROW_REFRESH_SECONDS
    offset = (monitor.pk * pipeline._SPREAD) % 1.0 * every
    now_s = timezone.now().timestamp()
    return datetime.fromtimestamp(math.floor((now_s + offset) / every) * every - offset, tz=UTC)


def claim(monitor: Monitor, due: datetime) -> Items:
    """The dispatcher claims the monitor's tick due at ``due``."""
    Schedule.objects.filter(monitor_id=monitor.pk).update(next_due_at=due)
    [batch] = dispatch.claim_batches(now=due, size=500)
    return [(c.monitor_id, c.due_at) for c in batch]


def evaluate(items: Items) -> pipeline.BatchResult:
    return pipeline.evaluate_batch(items)


def row(monitor: Monitor) -> tuple[str, Monitor]:
    """The row as stored and its xmin (which any UPDATE of it moves, HOT or not)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM monitors_monitor WHERE id = %s", [monitor.pk])
        (xmin,) = cursor.fetchone()
    return xmin, Monitor.objects.get(pk=monitor.pk)


def settle(monitor: Monitor, influx_db, start: datetime) -> None:
    """Three passing ticks (recover_after=2): from the third on, a pass changes nothing."""
    for second in (1, 2, 3):
        write(influx_db, 20.0)
        assert evaluate(claim(monitor, start + timedelta(seconds=second))).applied == 1


def failures(monitor: Monitor) -> int:
    return int(Monitor.objects.get(pk=monitor.pk).state.get("failures", 0))


def test_a_settled_monitor_evaluated_again_writes_nothing(last_value_monitor, influx_db) -> None:
    start = cell_start(last_value_monitor)
    settle(last_value_monitor, influx_db, start)
    before_xmin, before = row(last_value_monitor)

    write(influx_db, 21.0)
    result = evaluate(claim(last_value_monitor, start + timedelta(seconds=4)))

    after_xmin, after = row(last_value_monitor)
    assert (result.applied, result.skipped) == (1, 0)  # evaluated, counted in the metrics
    assert result.outcomes == {"ok": 1}
    assert after_xmin == before_xmin  # not even a narrow write
    assert after.last_value == 20.0
    assert after.evaluated_due_at == before.evaluated_due_at


def test_the_row_is_refreshed_once_its_grid_line_passes(
    last_value_monitor, influx_db, api_client_for
) -> None:
    start = cell_start(last_value_monitor)
    settle(last_value_monitor, influx_db, start)
    revision = Monitor.objects.get(pk=last_value_monitor.pk).revision
    write(influx_db, 21.0)
    evaluate(claim(last_value_monitor, start + timedelta(seconds=20)))  # same cell: unwritten
    assert Monitor.objects.get(pk=last_value_monitor.pk).last_value == 20.0

    write(influx_db, 22.5)
    due = start + timedelta(seconds=31)  # the next cell
    before = timezone.now()
    evaluate(claim(last_value_monitor, due))

    refreshed = Monitor.objects.get(pk=last_value_monitor.pk)
    assert refreshed.last_value == 22.5
    assert "22.5" in refreshed.status_reason
    assert refreshed.evaluated_due_at == due
    assert refreshed.last_evaluated_at is not None
    assert refreshed.last_evaluated_at >= before
    assert refreshed.revision == revision  # narrow: the kept monitor stays valid
    shown = api_client_for(last_value_monitor.owner).get(f"/monitors/{last_value_monitor.pk}")
    assert shown.json()["last_value"] == 22.5


def test_a_monitor_in_trouble_writes_its_value_every_tick(last_value_monitor, influx_db) -> None:
    start = cell_start(last_value_monitor)
    settle(last_value_monitor, influx_db, start)
    for second, value in ((4, 40.0), (5, 41.0), (6, 42.0), (7, 43.0)):  # pending 3: fires at 6
        write(influx_db, value)
        evaluate(claim(last_value_monitor, start + timedelta(seconds=second)))

    firing = Monitor.objects.get(pk=last_value_monitor.pk)
    assert firing.status == Status.FIRING
    assert firing.last_value == 43.0  # steady and firing: the quiet write, every tick
    assert firing.evaluated_due_at == start + timedelta(seconds=7)


def test_a_stale_batch_after_an_unwritten_tick_does_not_count_a_tick_twice(
    last_value_monitor, influx_db
) -> None:
    start = cell_start(last_value_monitor)
    settle(last_value_monitor, influx_db, start)
    stale = claim(last_value_monitor, start + timedelta(seconds=4))  # its worker stalls
    newer_due = start + timedelta(seconds=5)
    newer = claim(last_value_monitor, newer_due)
    write(influx_db, 20.0)
    evaluate(newer)  # evaluated in time, quiet: nothing written
    resident.forget()  # the stale batch runs in another process

    write(influx_db, 40.0)
    first = evaluate(stale)
    replay = evaluate(newer)  # the newer batch delivered again, in that process too

    monitor = Monitor.objects.get(pk=last_value_monitor.pk)
    assert first.applied == 1
    assert monitor.status == Status.PENDING
    assert monitor.evaluated_due_at == newer_due  # applied under the newest tick claimed
    assert (replay.applied, replay.skipped) == (0, 1)  # that tick is counted already
    assert failures(last_value_monitor) == 1
    assert Monitor.objects.get(pk=last_value_monitor.pk).state_version == monitor.state_version

    for second in (6, 7):  # two more failing ticks fire it (pending_for=3), once
        write(influx_db, 41.0)
        evaluate(claim(last_value_monitor, start + timedelta(seconds=second)))
    assert Monitor.objects.get(pk=last_value_monitor.pk).status == Status.FIRING
    fired = Notification.objects.filter(monitor=last_value_monitor, event="fired")
    assert fired.count() == 1


def test_a_redelivered_batch_changes_nothing_and_tells_nobody(
    last_value_monitor, influx_db
) -> None:
    start = cell_start(last_value_monitor)
    settle(last_value_monitor, influx_db, start)
    batches = {}
    for second, value in ((4, 40.0), (5, 40.0), (6, 40.0), (7, 20.0), (8, 20.0), (9, 20.0)):
        write(influx_db, value)  # pending, pending, fired, one pass, resolved, settled
        batches[second] = claim(last_value_monitor, start + timedelta(seconds=second))
        evaluate(batches[second])
    for second in (10, 11):  # settled: unwritten
        write(influx_db, 20.0)
        evaluate(claim(last_value_monitor, start + timedelta(seconds=second)))
    told = sorted(Notification.objects.values_list("event", flat=True))
    assert told == ["fired", "resolved"]
    xmin, before = row(last_value_monitor)

    replays = []
    for second in (6, 8, 9):  # the fired, resolved and last written ticks, in another process
        resident.forget()
        replays.append(evaluate(batches[second]))

    assert [(r.applied, r.skipped) for r in replays] == [(0, 1), (0, 1), (0, 1)]
    assert row(last_value_monitor)[0] == xmin
    assert sorted(Notification.objects.values_list("event", flat=True)) == told
    assert before.status == Status.OK


def test_overdue_and_the_status_words_see_a_healthy_monitor(last_value_monitor, influx_db) -> None:
    # the next cell: its ticks are claimed ahead of the clock, so none is overdue by then
    start = cell_start(last_value_monitor) + timedelta(seconds=30)
    settle(last_value_monitor, influx_db, start)
    written = Monitor.objects.get(pk=last_value_monitor.pk).evaluated_due_at
    for second in (4, 5, 6):
        write(influx_db, 20.0)
        evaluate(claim(last_value_monitor, start + timedelta(seconds=second)))

    monitor = Monitor.objects.get(pk=last_value_monitor.pk)
    assert monitor.evaluated_due_at == written  # three ticks since, none written
    assert operations.overdue(late_by=timedelta(seconds=5)) == []
    assert monitor.last_evaluated_at is not None
    assert status_words(monitor).label == "OK"


def test_refreshes_are_spread_over_the_period_and_never_further_apart_than_it() -> None:
    every, base, monitors = 30.0, 1_764_000_000.0, 3000
    refreshed: Counter[int] = Counter()
    for monitor_id in range(1, monitors + 1):
        row_s = base  # every row written on the same tick, as after a restart
        for second in range(1, 91):
            due_s = base + second
            if pipeline._refresh_due(monitor_id, row_s, due_s, every):
                assert due_s - row_s <= every
                refreshed[second] += 1
                row_s = due_s

    assert sum(refreshed.values()) == monitors * 3  # once per 30 s each
    assert max(refreshed.values()) <= monitors / every * 1.5  # about a thirtieth each second
