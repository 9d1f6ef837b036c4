"""The dispatcher's tick, phase-aligned with the data (monitors/evaluate/phase.py): evaluation
learns the instant a source's points land from the ``last`` answers it reads, and the
dispatcher hands that source's batches over just after it. Real Redis, Postgres and InfluxDB."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from monitors import tasks
from monitors.evaluate import dispatch, phase
from tests.factories import MonitorFactory, SourceFactory
from tests.monitors.test_pipeline import tick


@pytest.fixture
def margin(settings):
    settings.DISPATCH_ALIGN_TO_DATA = True
    settings.DISPATCH_DATA_MARGIN_MS = 100
    return settings


def test_the_phase_is_a_circular_mean_of_the_points_sub_second_instants() -> None:
    assert phase.circular_phase([5_000_120, 6_000_140, 7_000_130]) == 130
    assert phase.circular_phase([1_990, 2_010]) == 0  # 990 and 10 ms: around 0, not 500
    assert phase.circular_phase([]) is None
    assert phase.circular_phase([0, 250, 500, 750]) is None  # no common instant


def test_a_batch_waits_for_the_next_landing_plus_the_margin(margin) -> None:
    assert phase.wait_for(200, now_ms=10_100) == 200  # lands at .200, runs at .300
    assert phase.wait_for(200, now_ms=10_350) == 0  # .300 passed 50 ms ago: still fresh
    assert phase.wait_for(200, now_ms=10_600) == 700  # stale: the next landing, 1 s later
    assert phase.wait_for(950, now_ms=10_000) == 50  # the margin wraps into the next second


@pytest.mark.django_db
def test_evaluation_records_the_phase_of_last_points_and_the_dispatcher_waits_for_it(
    owner, influx_db, margin, monkeypatch
) -> None:
    source = SourceFactory(owner=owner, database=influx_db.database)
    phase._redis().delete(f"{phase.KEY_PREFIX}{source.pk}")
    for device in ("a", "b"):
        MonitorFactory(
            owner=owner, source=source, tags={"device": device}, aggregation="last",
            window=timedelta(minutes=5), critical=35, interval=timedelta(seconds=10),
            next_due_at=timezone.now() - timedelta(seconds=1),
        )  # fmt: skip
    second = int(time.time()) * 1000 - 10_000
    for device, offset in (("a", 420), ("b", 440)):
        influx_db.write("gro01", "temperature", [(0, 20.0)], {"device": device},
                        now_ms=second + offset)  # fmt: skip

    tick()

    assert phase._redis().get(f"{phase.KEY_PREFIX}{source.pk}") == b"430"
    waits = phase.countdowns([source.pk], now=(second + 10_000 + 100) / 1000)
    assert waits == {source.pk: pytest.approx(0.43)}  # lands at .430, runs at .530

    sent: list[float | None] = []
    monkeypatch.setattr(
        tasks.evaluate_monitors, "apply_async", lambda kwargs, countdown: sent.append(countdown)
    )
    monkeypatch.setattr(tasks.evaluate_monitors, "delay", lambda due: sent.append(None))
    for monitor in source.monitors.all():
        monitor.next_due_at = timezone.now()
        monitor.save()
    tasks.enqueue_batches(dispatch.claim_batches(now=timezone.now(), size=500))

    assert len(sent) == 1
    assert sent[0] is None or 0 < sent[0] < 1  # at once if .530 just passed, else before it


@pytest.mark.django_db
def test_other_aggregates_and_switched_off_alignment_record_nothing(
    owner, influx_db, margin
) -> None:
    source = SourceFactory(owner=owner, database=influx_db.database)
    phase._redis().delete(f"{phase.KEY_PREFIX}{source.pk}")
    MonitorFactory(
        owner=owner, source=source, aggregation="mean", window=timedelta(minutes=5),
        critical=35, next_due_at=timezone.now() - timedelta(seconds=1),
    )  # fmt: skip
    influx_db.write("gro01", "temperature", [(1, 20.0)], {"device": "greenhouse-1"})

    tick()
    margin.DISPATCH_ALIGN_TO_DATA = False

    assert phase._redis().get(f"{phase.KEY_PREFIX}{source.pk}") is None
    assert phase.countdowns([source.pk]) == {}
