"""The evaluation pipeline against real Postgres and InfluxDB: claim → observe → transition →
state, incidents and outbox in one transaction."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Profile
from billing.gating import comp
from monitors.evaluate import dispatch, pipeline
from monitors.influxdb import observe
from monitors.models import Incident, Monitor, Notification, Schedule, Silence, Status
from tests import customer_influx
from tests.conftest import ROOT
from tests.factories import MonitorFactory, SourceFactory, UserFactory

HOT, COOL = 41.0, 20.0


def write(influx_db, value, ago=5):
    influx_db.write("gro01", "temperature", [(ago, value)], {"device": "greenhouse-1"})


def tick(now=None):
    """One dispatcher pass, evaluated in-process; returns the batch results."""
    now = now or timezone.now()
    return [
        pipeline.evaluate_batch([(c.monitor_id, c.due_at) for c in batch])
        for batch in dispatch.claim_batches(now=now, size=500)
    ]


def due_again(monitor):
    Schedule.objects.filter(monitor_id=monitor.pk).update(next_due_at=timezone.now())


@pytest.mark.django_db
def test_the_payload_carries_the_owners_time_zone_read_once_for_the_batch(hot_monitor, influx_db):
    Profile.objects.update_or_create(
        user=hot_monitor.owner, defaults={"time_zone": "Europe/Amsterdam"}
    )
    write(influx_db, HOT)
    with CaptureQueriesContext(connection) as queries:
        tick()

    fired = Notification.objects.filter(monitor=hot_monitor, event="fired")
    assert fired.count() == 2
    assert {n.payload["time_zone"] for n in fired} == {"Europe/Amsterdam"}
    # one read of the owners' zones for the batch, not one per notification
    assert len([q for q in queries if "accounts_profile" in q["sql"]]) == 1


@pytest.mark.django_db
def test_a_breach_fires_once_with_an_incident_and_one_row_per_channel_then_resolves(
    hot_monitor, influx_db
):
    write(influx_db, HOT)
    [result] = tick()

    hot_monitor.refresh_from_db()
    assert result.applied == 1
    assert hot_monitor.status == Status.FIRING
    assert hot_monitor.last_value == HOT
    incident = Incident.objects.get(monitor=hot_monitor)
    assert incident.is_open
    assert incident.opened_value == HOT
    fired = Notification.objects.filter(monitor=hot_monitor, event="fired")
    assert fired.count() == 2
    payload = fired[0].payload
    assert payload["event"] == "fired"
    assert payload["value"] == HOT
    assert payload["threshold"] == 35
    assert payload["incident"]["id"] == incident.pk
    assert payload["monitor"]["url"].endswith(f"/app/monitors/{hot_monitor.pk}")
    assert [p[1] for p in payload["points"]] == [HOT]
    assert "SELECT max" in payload["query"]
    assert payload["time_zone"] == "UTC"  # an owner without a profile

    due_again(hot_monitor)
    tick()  # still hot: no new notification
    assert Notification.objects.filter(monitor=hot_monitor).count() == 2

    write(influx_db, COOL, ago=1)
    Monitor.objects.filter(pk=hot_monitor.pk).update(window=timedelta(seconds=3))
    due_again(hot_monitor)
    tick()

    hot_monitor.refresh_from_db()
    assert hot_monitor.status == Status.OK
    incident.refresh_from_db()
    assert incident.resolved_at is not None
    resolved = Notification.objects.filter(monitor=hot_monitor, event="resolved")
    assert resolved.count() == 2
    assert resolved[0].payload["incident"]["duration_seconds"] >= 0


@pytest.mark.django_db
def test_a_batch_replayed_after_it_committed_changes_nothing(hot_monitor, influx_db):
    write(influx_db, HOT)
    [batch] = dispatch.claim_batches(now=timezone.now(), size=500)
    items = [(c.monitor_id, c.due_at) for c in batch]

    first = pipeline.evaluate_batch(items)
    again = pipeline.evaluate_batch(items)  # e.g. the task redelivered after a crash

    assert (first.applied, again.applied, again.skipped) == (1, 0, 1)
    assert Notification.objects.count() == 2
    assert Incident.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_evaluating_the_same_tick_apply_it_once(hot_monitor, influx_db):
    write(influx_db, HOT)
    [batch] = dispatch.claim_batches(now=timezone.now(), size=500)
    items = [(c.monitor_id, c.due_at) for c in batch]
    results = []
    start = threading.Barrier(2)

    def worker():
        start.wait()
        try:
            results.append(pipeline.evaluate_batch(items))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(r.applied for r in results) == [0, 1]
    assert Notification.objects.filter(event="fired").count() == 2  # one per channel
    assert Incident.objects.count() == 1
    hot_monitor.refresh_from_db()
    assert hot_monitor.state_version == 1


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(hot_monitor, influx_db):
    write(influx_db, HOT)
    [batch] = dispatch.claim_batches(now=timezone.now(), size=500)
    items = [(c.monitor_id, c.due_at.isoformat()) for c in batch]
    # Hold the monitor's row so the worker blocks inside its transaction, then kill it there.
    blocker = psycopg.connect(_database_url().replace("postgres://", "postgresql://"))
    blocker.execute("SELECT 1 FROM monitors_monitor WHERE id = %s FOR UPDATE", [hot_monitor.pk])
    code = (
        "import django, sys, json; django.setup();"
        "from datetime import datetime; from monitors.evaluate import pipeline;"
        "items = json.loads(sys.argv[1]);"
        "pipeline.evaluate_batch([(i, datetime.fromisoformat(d)) for i, d in items])"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(items)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": _database_url(), "DJANGO_DEBUG": "true"},
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait until it is blocked on our row lock
            with connection.cursor() as cursor:  # not the blocker: its stats snapshot is frozen
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                )
                waiting = cursor.fetchone()
            if waiting and waiting[0] >= 1:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the worker never reached its UPDATE")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        blocker.rollback()
        blocker.close()

    hot_monitor.refresh_from_db()
    assert hot_monitor.status == Status.OK  # the killed transaction left nothing behind
    assert hot_monitor.state_version == 0
    assert not Notification.objects.exists()

    # The next dispatch evaluates it again, exactly once.
    tick(now=hot_monitor.next_due_at)
    hot_monitor.refresh_from_db()
    assert hot_monitor.status == Status.FIRING
    assert Notification.objects.filter(event="fired").count() == 2


@pytest.mark.django_db
def test_a_silence_suppresses_notifications_and_its_end_notifies_if_still_firing(
    hot_monitor, influx_db, owner
):
    write(influx_db, HOT)
    silence = Silence.objects.create(
        owner=owner, monitor=hot_monitor, ends_at=timezone.now() + timedelta(hours=1)
    )
    tick()
    hot_monitor.refresh_from_db()
    assert hot_monitor.status == Status.FIRING  # state still tracked
    assert Incident.objects.filter(monitor=hot_monitor).count() == 1
    # nothing is sent; what was held back is logged, one row per channel
    assert set(Notification.objects.values_list("status", flat=True)) == {"suppressed"}
    assert Notification.objects.count() == 2

    silence.ends_at = timezone.now() - timedelta(seconds=1)
    silence.starts_at = silence.ends_at - timedelta(hours=1)
    silence.save()
    due_again(hot_monitor)
    tick()

    fired = Notification.objects.filter(event="fired").exclude(status="suppressed")
    assert fired.count() == 2
    assert "still firing after a silence" in fired[0].payload["reason"]


@pytest.mark.django_db
def test_a_monitor_edited_while_its_evaluation_is_in_flight_keeps_the_new_definition(
    hot_monitor, influx_db
):
    write(influx_db, HOT)
    [batch] = dispatch.claim_batches(now=timezone.now(), size=500)
    items = [(c.monitor_id, c.due_at) for c in batch]
    stale = Monitor.objects.get(pk=hot_monitor.pk)  # what the in-flight worker read
    from monitors import services

    services.monitor_update(monitor=hot_monitor, critical=50)  # new definition, new version
    observations = {stale.pk: observe.observe_batch([stale])[stale.pk]}
    assert observations[stale.pk].value == HOT

    result = pipeline._commit(
        [
            pipeline.Decision(
                stale,
                items[0][1],
                observations[stale.pk],
                *_decide(stale, observations[stale.pk]),
            )
        ],
        timezone.now(),
    )

    assert result.applied == 0  # the stale evaluation lost
    hot_monitor.refresh_from_db()
    assert hot_monitor.critical == 50
    assert hot_monitor.status == Status.OK
    assert not Notification.objects.exists()


def _decide(monitor, observation):
    from monitors.evaluate import step

    state, events, outcome = step.step(
        monitor,
        monitor.alert_state(),
        value=observation.value,
        error=observation.error,
        now=timezone.now(),
    )
    return outcome, state, events


@pytest.mark.django_db
def test_a_monitor_deleted_before_its_batch_runs_is_skipped(hot_monitor, influx_db):
    write(influx_db, HOT)
    [batch] = dispatch.claim_batches(now=timezone.now(), size=500)
    hot_monitor.delete()

    result = pipeline.evaluate_batch([(c.monitor_id, c.due_at) for c in batch])

    assert (result.applied, result.skipped) == (0, 1)


@pytest.mark.django_db
def test_unpaid_owners_monitors_wait_and_resume_after_payment(influx_db):
    unpaid = UserFactory(username="unpaid")
    source = SourceFactory(owner=unpaid, database=influx_db.database)
    monitor = MonitorFactory(owner=unpaid, source=source, next_due_at=timezone.now())

    assert tick() == []
    comp(unpaid)  # stands in for a paid invoice (billing's tests cover the webhook path)
    assert sum(r.applied for r in tick()) == 1
    monitor.refresh_from_db()
    assert monitor.last_evaluated_at is not None


@pytest.mark.django_db
def test_influxdb_down_follows_the_error_policy_and_recovers(owner, influx_db):
    source = SourceFactory(owner=owner, database=influx_db.database, timeout_seconds=1)
    write(influx_db, COOL)
    alerting = MonitorFactory(owner=owner, source=source, error_policy="alerting", critical=35)
    shown = MonitorFactory(owner=owner, source=source, error_policy="status", critical=35)
    kept = MonitorFactory(owner=owner, source=source, error_policy="keep_last", critical=35)
    tick()
    for monitor in (alerting, shown, kept):
        monitor.refresh_from_db()
        assert monitor.status == Status.OK

    customer_influx.stop()  # the customer's server goes down (url() starts it again)
    for monitor in (alerting, shown, kept):
        due_again(monitor)
    tick()
    statuses = {m.pk: Monitor.objects.get(pk=m.pk) for m in (alerting, shown, kept)}
    assert statuses[alerting.pk].status == Status.FIRING
    assert statuses[shown.pk].status == Status.ERROR
    assert "InfluxDB" in statuses[shown.pk].status_reason
    assert statuses[kept.pk].status == Status.OK  # keep_last: the last known state, by choice

    customer_influx.start()
    for monitor in (alerting, shown, kept):
        due_again(monitor)
    tick()
    for monitor in (alerting, shown, kept):
        monitor.refresh_from_db()
        assert monitor.status == Status.OK
    assert Notification.objects.filter(monitor=alerting, event="resolved").exists() is False
    # (the fixture's database survives the restart: same data directory)


@pytest.mark.django_db(transaction=True)
def test_celery_dispatch_and_evaluation_end_to_end(hot_monitor, influx_db):
    """The real tasks on a real worker (its own queue, pointed at the test database)."""
    from monitors.tasks import dispatch_due_monitors
    from tests.conftest import start_celery_worker, stop_celery_worker

    queue = f"test-pipeline-{os.getpid()}"
    write(influx_db, HOT)
    worker, log = start_celery_worker("pipeline", DATABASE_URL=_database_url(), CELERY_QUEUE=queue)
    try:
        dispatch_due_monitors.apply_async(queue=queue)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            hot_monitor.refresh_from_db()
            if hot_monitor.status == Status.FIRING:
                break
            time.sleep(0.2)
    finally:
        stop_celery_worker(worker, log)

    assert hot_monitor.status == Status.FIRING
    assert Notification.objects.filter(monitor=hot_monitor, event="fired").count() == 2


@pytest.mark.django_db
def test_an_open_incident_follows_the_value_and_keeps_the_worst(hot_monitor, influx_db):
    Monitor.objects.filter(pk=hot_monitor.pk).update(
        window=timedelta(seconds=3), aggregation="last"
    )
    for value in (41.0, 45.0, 38.0):
        write(influx_db, value, ago=1)
        due_again(hot_monitor)
        tick()
        time.sleep(1.1)  # the next point is the newest in the window

    incident = Incident.objects.get(monitor=hot_monitor)
    assert (incident.opened_value, incident.peak_value, incident.last_value) == (41.0, 45.0, 38.0)
    assert incident.is_open


@pytest.mark.django_db
def test_silences_cover_their_monitor_or_all_of_their_owners_while_they_last() -> None:
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    a1, a2, a3 = (MonitorFactory(owner=alice) for _ in range(3))
    b1, b2 = (MonitorFactory(owner=bob) for _ in range(2))
    c1 = MonitorFactory(owner=carol)
    now = timezone.now()
    hour = timedelta(hours=1)
    Silence.objects.create(owner=alice, monitor=a1, starts_at=now - hour, ends_at=now + hour)
    Silence.objects.create(owner=alice, monitor=a2, starts_at=now - 2 * hour, ends_at=now)
    Silence.objects.create(owner=alice, monitor=a3, starts_at=now + hour, ends_at=now + 2 * hour)
    Silence.objects.create(owner=bob, starts_at=now - hour, ends_at=now + hour)  # all of bob's

    silenced = pipeline.silenced_monitor_ids([a1, a2, a3, b1, b2, c1], now)

    assert silenced == {a1.pk, b1.pk, b2.pk}
