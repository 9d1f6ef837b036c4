"""Every enabled monitor is on the dispatcher's schedule, however it was written: a database
trigger keeps the Schedule row in step, and a housekeeping task repairs what got around it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from monitors import tasks
from monitors.evaluate import dispatch
from monitors.models import Monitor, Schedule
from tests.factories import MonitorFactory, SourceFactory, UserFactory


def _unsaved(source, name: str, **fields) -> Monitor:
    return Monitor(owner=source.owner, source=source, name=name, critical=30.0, **fields)


@pytest.mark.django_db
def test_bulk_created_monitors_are_claimed_by_the_dispatcher() -> None:
    source = SourceFactory()
    before = timezone.now()
    created = Monitor.objects.bulk_create(
        [
            _unsaved(source, "a", interval=timedelta(seconds=30)),
            _unsaved(source, "b"),
            _unsaved(source, "paused", enabled=False),
        ]
    )
    enabled = {m.pk for m in created if m.enabled}

    claimed = dispatch.claim_due(now=timezone.now() + dispatch.FIRST_DUE_SPREAD)

    assert {c.monitor_id for c in claimed} == enabled
    assert all(c.source_id == source.pk and c.due_at >= before for c in claimed)
    assert Schedule.objects.get(monitor_id=created[0].pk).interval == timedelta(seconds=30)
    assert not Schedule.objects.filter(monitor_id=created[2].pk).exists()


@pytest.mark.django_db
def test_queryset_updates_pause_resume_and_move_a_monitor_on_the_schedule() -> None:
    monitor = MonitorFactory(next_due_at=timezone.now() + timedelta(hours=1))
    other_source = SourceFactory(owner=monitor.owner)
    mine = Monitor.objects.filter(pk=monitor.pk)

    mine.update(enabled=False)
    assert not Schedule.objects.filter(monitor_id=monitor.pk).exists()

    mine.update(enabled=True)
    soon = timezone.now() + dispatch.FIRST_DUE_SPREAD
    assert [c.monitor_id for c in dispatch.claim_due(now=soon)] == [monitor.pk]

    mine.update(source=other_source, interval=timedelta(minutes=7))
    schedule = Schedule.objects.get(monitor_id=monitor.pk)
    assert (schedule.source_id, schedule.interval) == (other_source.pk, timedelta(minutes=7))
    assert schedule.next_due_at > timezone.now()  # a move keeps the due time


@pytest.mark.django_db
def test_a_full_save_that_copies_nothing_new_leaves_the_due_time_alone() -> None:
    due = timezone.now() + timedelta(minutes=3)
    loaded = Monitor.objects.get(pk=MonitorFactory(next_due_at=due).pk)
    loaded.name = "renamed"
    loaded.save()
    assert Schedule.objects.get(monitor_id=loaded.pk).next_due_at == due


def _repairs_counted(client: Client) -> float:
    body = client.get("/metrics").content.decode()
    [line] = [x for x in body.splitlines() if x.startswith("growalert_schedule_repairs_total ")]
    return float(line.split()[1])


@pytest.mark.django_db(transaction=True)  # the task checks its connection, as in a worker
def test_a_lost_schedule_row_is_repaired_and_counted_in_metrics() -> None:
    client = Client()
    lost = MonitorFactory(next_due_at=timezone.now() + timedelta(hours=1))
    kept = MonitorFactory(next_due_at=timezone.now() + timedelta(hours=1))
    MonitorFactory(enabled=False)
    with connection.cursor() as cursor:  # a write that got around the trigger
        cursor.execute("DELETE FROM monitors_schedule WHERE monitor_id = %s", [lost.pk])
    counted = _repairs_counted(client)
    assert dispatch.claim_due(now=timezone.now()) == []  # lost: never evaluated

    assert tasks.repair_schedules() == 1

    soon = timezone.now() + dispatch.FIRST_DUE_SPREAD  # due within a minute, like a new one
    assert [c.monitor_id for c in dispatch.claim_due(now=soon)] == [lost.pk]
    schedule = Schedule.objects.get(monitor_id=lost.pk)
    assert (schedule.owner_id, schedule.source_id) == (lost.owner_id, lost.source_id)
    assert Schedule.objects.get(monitor_id=kept.pk).next_due_at > timezone.now()  # untouched
    assert _repairs_counted(client) == counted + 1
    assert tasks.repair_schedules() == 0  # nothing left to repair, nothing counted
    assert _repairs_counted(client) == counted + 1


def test_the_repair_runs_every_minute_from_beat() -> None:
    from growalert.celery import app

    entry = app.conf.beat_schedule["repair-schedules"]
    assert entry["task"] == "monitors.tasks.repair_schedules"
    assert entry["task"] in app.tasks
    assert entry["schedule"] == 60.0


def test_the_owner_copy_follows_too(db) -> None:
    monitor = MonitorFactory()
    new_owner = UserFactory()
    Monitor.objects.filter(pk=monitor.pk).update(owner=new_owner)
    assert Schedule.objects.get(monitor_id=monitor.pk).owner_id == new_owner.pk
