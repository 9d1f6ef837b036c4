"""A settled monitor's next passing tick is known without taking the decision
(``pipeline._settled_again``): the worker skips alerts_core's transition, the reason's text and
the decision, and writes nothing, as ``_unwritten`` would have. Anything else (a value past a
threshold, a silence starting, a refresh due, a state changed) is decided as usual, and the
rows and notifications are the same with and without the shortcut. Real Postgres and InfluxDB.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitors.evaluate import pipeline, step
from monitors.models import Monitor, Notification, Schedule, Silence, Status
from tests.factories import MonitorFactory
from tests.monitors.test_quiet_writes import last_value_monitor as last_value_monitor
from tests.monitors.test_quiet_writes import write
from tests.monitors.test_unwritten_ticks import cell_start, claim, evaluate, row, settle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def refresh_every_30_s(settings) -> None:
    settings.EVALUATION_ROW_REFRESH_SECONDS = 30.0


@pytest.fixture
def decided(monkeypatch) -> list[int]:
    """The monitors whose decision was taken (alerts_core's transition run)."""
    taken: list[int] = []
    take = step.step

    def counted(monitor, *args, **kwargs):
        taken.append(monitor.pk)
        return take(monitor, *args, **kwargs)

    monkeypatch.setattr(step, "step", counted)
    return taken


def test_a_settled_monitors_passing_tick_takes_no_decision(
    last_value_monitor, influx_db, decided
) -> None:
    start = cell_start(last_value_monitor)
    settle(last_value_monitor, influx_db, start)
    decided.clear()
    before_xmin, _ = row(last_value_monitor)

    for second, value in ((4, 21.0), (5, 34.9), (6, 20.5)):
        write(influx_db, value)
        result = evaluate(claim(last_value_monitor, start + timedelta(seconds=second)))
        assert (result.applied, result.skipped, result.outcomes) == (1, 0, {"ok": 1})

    assert decided == []
    assert row(last_value_monitor)[0] == before_xmin  # nothing written


def test_a_value_past_a_threshold_is_decided(last_value_monitor, influx_db, decided) -> None:
    Monitor.objects.filter(pk=last_value_monitor.pk).update(warning=30.0)
    start = cell_start(last_value_monitor)
    settle(last_value_monitor, influx_db, start)
    decided.clear()

    write(influx_db, 31.0)  # warning
    evaluate(claim(last_value_monitor, start + timedelta(seconds=4)))
    write(influx_db, 36.0)  # critical: pending (pending_for 3)
    evaluate(claim(last_value_monitor, start + timedelta(seconds=5)))

    assert decided == [last_value_monitor.pk] * 2
    monitor = Monitor.objects.get(pk=last_value_monitor.pk)
    assert monitor.status == Status.PENDING
    assert monitor.last_value == 36.0
    events = Notification.objects.filter(monitor=last_value_monitor).values_list("event", flat=True)
    assert list(events) == ["warning_raised"]


def test_a_silence_starting_is_decided(last_value_monitor, influx_db, decided) -> None:
    start = cell_start(last_value_monitor)
    settle(last_value_monitor, influx_db, start)
    decided.clear()
    Silence.objects.create(
        owner=last_value_monitor.owner,
        monitor=last_value_monitor,
        ends_at=timezone.now() + timedelta(hours=1),
    )

    write(influx_db, 21.0)
    evaluate(claim(last_value_monitor, start + timedelta(seconds=4)))

    assert decided == [last_value_monitor.pk]
    assert Monitor.objects.get(pk=last_value_monitor.pk).state["silenced"] is True


def test_the_refresh_is_still_written_on_its_grid(last_value_monitor, influx_db, decided) -> None:
    start = cell_start(last_value_monitor)
    settle(last_value_monitor, influx_db, start)
    decided.clear()

    write(influx_db, 22.5)
    evaluate(claim(last_value_monitor, start + timedelta(seconds=31)))  # the next cell

    assert decided == [last_value_monitor.pk]
    assert Monitor.objects.get(pk=last_value_monitor.pk).last_value == 22.5


# Settling, a warning, firing, resolving, settling again; then a monitor that goes on
# passing for a while.
VALUES = [20, 20, 20, 21, 31, 20, 20, 20, 40, 40, 40, 41, 20, 20, 20, 20, 21, 22, 20, 36, 20]


def test_the_same_rows_and_notifications_with_and_without_the_shortcut(
    last_value_monitor, influx_db, monkeypatch
) -> None:
    Monitor.objects.filter(pk=last_value_monitor.pk).update(warning=30.0)
    fields = {
        f.name: getattr(last_value_monitor, f.name)
        for f in Monitor._meta.concrete_fields
        if f.name not in {"id", "name", "revision", "created_at", "updated_at"}
    }
    twin = MonitorFactory(**{**fields, "warning": 30.0, "name": "twin"})
    twin.channels.set(last_value_monitor.channels.all())
    start = cell_start(last_value_monitor)
    shortcut = pipeline._settled_again
    taken: list[bool] = []

    def counted(*args: object, **kwargs: object) -> bool:
        taken.append(shortcut(*args, **kwargs))  # type: ignore[arg-type]
        return taken[-1]

    seen: dict[int, list[tuple[object, ...]]] = {last_value_monitor.pk: [], twin.pk: []}

    for second, value in enumerate(VALUES, start=1):
        write(influx_db, float(value))
        due = start + timedelta(seconds=second)
        Schedule.objects.filter(monitor_id__in=seen).update(next_due_at=due)
        for monitor, allowed in ((last_value_monitor, True), (twin, False)):
            monkeypatch.setattr(
                pipeline, "_settled_again", counted if allowed else lambda *a, **k: False
            )
            items = claim(monitor, due)
            evaluate([item for item in items if item[0] == monitor.pk])
        for pk in seen:
            stored = Monitor.objects.get(pk=pk)
            state = {k: v for k, v in stored.state.items() if k not in {"since", "fired_at"}}
            state.pop("last_notified_at", None)
            seen[pk].append((stored.status, state, stored.last_value, stored.evaluated_due_at))

    assert seen[last_value_monitor.pk] == seen[twin.pk]
    assert sum(taken) >= 4  # the shortcut was taken on the settled stretches (ticks 4, 8, 17-19)
    events = {
        pk: list(
            Notification.objects.filter(monitor_id=pk)
            .order_by("created_at")
            .values_list("event", flat=True)
        )
        for pk in seen
    }
    assert events[last_value_monitor.pk] == events[twin.pk]
    assert events[twin.pk] == ["warning_raised", "warning_cleared", "fired", "resolved"]
