"""Write only what changed: an evaluation that changes nothing the next transition can tell
apart writes its value, reason and tick only (the state and its version stay), and a worker
reuses the monitors whose rows have not changed (monitors/evaluate/resident.py). Real Postgres
and InfluxDB."""

from __future__ import annotations

import gc
import re
import time
import weakref
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from monitors.evaluate import pipeline, resident
from monitors.models import Monitor, Notification, Status
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory
from tests.monitors.test_pipeline import due_again, tick

pytestmark = pytest.mark.django_db


def write(influx_db, value: float) -> None:
    influx_db.write("gro01", "temperature", [(1, value)], {"device": "greenhouse-1"})
    time.sleep(0.01)  # the next tick's due time is later than this one's


@pytest.fixture
def last_value_monitor(owner, influx_db):
    source = SourceFactory(owner=owner, database=influx_db.database)
    monitor = MonitorFactory(
        owner=owner,
        source=source,
        aggregation="last",
        window=timedelta(minutes=1),
        interval=timedelta(seconds=10),
        critical=35,
        pending_for=3,
        recover_after=2,
        flap_detection=False,
        next_due_at=timezone.now() - timedelta(seconds=1),
    )
    monitor.channels.set([ChannelFactory(owner=owner)])
    return monitor


@pytest.fixture
def every_evaluation_written(settings) -> None:
    """What a quiet evaluation writes when it writes (a refresh, a monitor in trouble, or every
    evaluation with ``EVALUATION_ROW_REFRESH_SECONDS=0``); these ticks come milliseconds apart,
    within one refresh period, and a settled monitor would write nothing
    (tests/monitors/test_unwritten_ticks.py)."""
    settings.EVALUATION_ROW_REFRESH_SECONDS = 0


def evaluate(monitor: Monitor, influx_db, value: float) -> Monitor:
    write(influx_db, value)
    due_again(monitor)
    tick()
    monitor.refresh_from_db()
    return monitor


def test_a_steady_evaluation_writes_its_value_and_tick_but_not_its_state(
    last_value_monitor, influx_db, every_evaluation_written
) -> None:
    evaluate(last_value_monitor, influx_db, 20.0)
    # passes counts up to recover_after (2): past it, passing checks are the same state
    first = evaluate(last_value_monitor, influx_db, 20.0)
    version, state, ticked = first.state_version, first.state, first.evaluated_due_at
    evaluated_at = first.last_evaluated_at
    assert ticked is not None
    assert evaluated_at is not None

    second = evaluate(last_value_monitor, influx_db, 22.5)

    assert second.status == Status.OK
    assert second.state_version == version  # nothing the next transition reads changed
    assert second.state == state
    assert second.last_value == 22.5
    assert "22.5" in second.status_reason
    assert second.evaluated_due_at is not None
    assert second.evaluated_due_at > ticked
    assert second.last_evaluated_at is not None
    assert second.last_evaluated_at > evaluated_at


def test_the_same_tick_applied_twice_is_skipped_on_the_quiet_path_too(
    last_value_monitor, influx_db
) -> None:
    evaluate(last_value_monitor, influx_db, 20.0)
    evaluate(last_value_monitor, influx_db, 20.0)
    write(influx_db, 21.0)
    due_again(last_value_monitor)

    [first] = tick()
    monitor = Monitor.objects.get(pk=last_value_monitor.pk)
    assert monitor.evaluated_due_at is not None
    again = pipeline.evaluate_batch([(monitor.pk, monitor.evaluated_due_at)])

    assert first.applied == 1
    assert (again.applied, again.skipped) == (0, 1)


def test_pending_firing_and_resolving_count_right_across_quiet_ticks(
    last_value_monitor, influx_db, every_evaluation_written
) -> None:
    statuses = []
    versions = []
    for value in (40.0, 41.0, 42.0, 43.0, 44.0, 20.0, 21.0, 22.0, 23.0):
        monitor = evaluate(last_value_monitor, influx_db, value)
        statuses.append(monitor.status)
        versions.append(monitor.state_version)

    assert statuses == [
        Status.PENDING,
        Status.PENDING,
        Status.FIRING,  # the third failing check, pending_for=3
        Status.FIRING,
        Status.FIRING,
        Status.FIRING,  # one pass of recover_after=2
        Status.OK,
        Status.OK,
        Status.OK,
    ]
    # firing and steady (checks 4 and 5) and OK with recover_after passes (check 9): narrow
    assert versions[3] == versions[2]
    assert versions[4] == versions[2]
    assert versions[8] == versions[7]
    events = list(
        Notification.objects.filter(monitor=last_value_monitor).values_list("event", flat=True)
    )
    assert sorted(events) == ["fired", "resolved"]
    assert monitor.last_value == 23.0


def test_a_row_changed_behind_the_workers_back_is_read_again(last_value_monitor, influx_db) -> None:
    evaluate(last_value_monitor, influx_db, 20.0)
    evaluate(last_value_monitor, influx_db, 20.0)  # kept by this process from now on
    with connection.cursor() as cursor:  # no version, no updated_at: only the row changes
        cursor.execute(
            "UPDATE monitors_monitor SET critical = 10, pending_for = 1 WHERE id = %s",
            [last_value_monitor.pk],
        )

    monitor = evaluate(last_value_monitor, influx_db, 20.0)

    assert monitor.status == Status.FIRING
    assert Notification.objects.filter(monitor=monitor, event="fired").exists()


@pytest.fixture
def reloads(monkeypatch) -> list[int]:
    """The ids each tick loads through the ORM (the others were kept by this process)."""
    loaded: list[int] = []
    load_rows = pipeline._load_rows

    def counting(ids: list[int]) -> list[Monitor]:
        loaded.extend(ids)
        return load_rows(ids)

    monkeypatch.setattr(pipeline, "_load_rows", counting)
    return loaded


def test_a_transition_the_worker_wrote_itself_does_not_reload_the_monitor(
    last_value_monitor, influx_db, reloads
) -> None:
    evaluate(last_value_monitor, influx_db, 20.0)
    assert reloads == [last_value_monitor.pk]  # first seen: loaded once
    statuses = []
    for value in (40.0, 41.0, 42.0, 20.0, 21.0):  # pending, pending, firing, firing, ok
        statuses.append(evaluate(last_value_monitor, influx_db, value).status)

    assert statuses == [Status.PENDING, Status.PENDING, Status.FIRING, Status.FIRING, Status.OK]
    assert reloads == [last_value_monitor.pk]  # every whole write kept the monitor current
    events = Notification.objects.filter(monitor=last_value_monitor).values_list("event", flat=True)
    assert sorted(events) == ["fired", "resolved"]


def test_a_new_monitor_with_flap_detection_is_kept_while_its_history_grows(
    last_value_monitor, influx_db, reloads
) -> None:
    Monitor.objects.filter(pk=last_value_monitor.pk).update(flap_detection=True)
    versions = [evaluate(last_value_monitor, influx_db, 20.0).state_version for _ in range(4)]

    assert versions == sorted(set(versions))  # the history grew: a whole write each check
    assert reloads == [last_value_monitor.pk]


def test_a_row_changed_by_hand_after_a_transition_is_read_again(
    last_value_monitor, influx_db, reloads
) -> None:
    for value in (40.0, 41.0, 42.0):
        evaluate(last_value_monitor, influx_db, value)  # fired: written whole, kept
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE monitors_monitor SET critical = 50 WHERE id = %s", [last_value_monitor.pk]
        )

    # 43 passes the new threshold: recover_after=2, so firing still, then ok
    monitor = evaluate(last_value_monitor, influx_db, 43.0)

    assert reloads == [last_value_monitor.pk, last_value_monitor.pk]
    assert monitor.status == Status.FIRING
    assert evaluate(last_value_monitor, influx_db, 44.0).status == Status.OK


class _Cycle:
    """Garbage that only the cyclic collector frees (it refers to itself)."""

    def __init__(self) -> None:
        self.me = self


def test_kept_monitors_are_left_out_of_garbage_collection(last_value_monitor, influx_db) -> None:
    resident.forget()
    assert gc.get_freeze_count() == 0

    evaluate(last_value_monitor, influx_db, 20.0)  # loaded and kept: frozen with the rest

    assert gc.get_freeze_count() > 0
    resident.forget()
    assert gc.get_freeze_count() == 0


def test_cyclic_garbage_frozen_with_them_is_collected_at_the_next_thaw(monkeypatch) -> None:
    monkeypatch.setattr(resident, "THAW_EVERY", 3)
    monkeypatch.setattr(resident, "_freezes", 0)
    cycle = _Cycle()
    gone = weakref.ref(cycle)
    resident._freeze()
    del cycle
    gc.collect()
    assert gone() is not None  # frozen: not collected

    resident._freeze()
    resident._freeze()  # the third: everything thawed and collected once

    assert gone() is None
    resident.forget()


def test_every_column_but_the_quiet_ones_moves_the_revision() -> None:
    """The trigger of migration 0026 compares a fixed list of columns: a column added to the
    table later must be added to it (or to the quiet ones), or an edit of that column alone
    would leave kept monitors stale."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
            " WHERE tgname = 'monitors_monitor_revised'"
        )
        (definition,) = cursor.fetchone()
    quiet = {f.column for f in Monitor._meta.concrete_fields if f.attname in resident.QUIET_FIELDS}
    left_out = quiet | {"id", "revision"}
    compared = {f.column for f in Monitor._meta.concrete_fields if f.column not in left_out}

    def in_trigger(column: str) -> bool:  # Postgres writes old.name, or old."window"
        return re.search(rf'\bold\.(?:"{column}"|{column}\b)', definition) is not None

    missing = sorted(column for column in compared if not in_trigger(column))
    assert not missing, f"add to the revision trigger: {missing}"
    assert not any(in_trigger(column) for column in quiet)


def test_a_quiet_write_keeps_the_revision_and_any_other_write_moves_it(
    last_value_monitor, influx_db, every_evaluation_written
) -> None:
    for value in (20.0, 20.0, 20.0):  # passes reach recover_after: settled from here on
        first = evaluate(last_value_monitor, influx_db, value).revision
    quiet = evaluate(last_value_monitor, influx_db, 21.0)
    assert (quiet.revision, quiet.last_value) == (first, 21.0)  # value and tick only
    Monitor.objects.filter(pk=last_value_monitor.pk).update(name="renamed")
    last_value_monitor.refresh_from_db()
    assert last_value_monitor.revision == first + 1
    Monitor.objects.filter(pk=last_value_monitor.pk).update(status_reason="by hand")
    last_value_monitor.refresh_from_db()
    assert last_value_monitor.revision == first + 1
