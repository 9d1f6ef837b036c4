"""Retention on real Postgres: exactly the old rows go (boundaries included), what is still
needed stays, batches respect their size and budget, and the pipeline running beside a prune
neither waits nor fails."""

from __future__ import annotations

import io
import threading
import uuid
from datetime import timedelta
from itertools import count

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from billing.models import StripeEvent
from monitors import retention
from monitors.models import DeliveryAttempt, Incident, Monitor, Notification, Status
from shared import pruning
from tests.factories import ChannelFactory, MonitorFactory, UserFactory
from tests.monitors.test_pipeline import COOL, HOT, due_again, tick, write

DAY = timedelta(days=1)
_keys = count()


@pytest.fixture(autouse=True)
def _ages(settings):
    settings.RETENTION_NOTIFICATIONS_DAYS = 30
    settings.RETENTION_INCIDENTS_DAYS = 90
    settings.RETENTION_STRIPE_EVENTS_DAYS = 90
    settings.RETENTION_ADMIN_LOG_DAYS = 365
    settings.RETENTION_PAUSE_SECONDS = 0


def notification(channel, *, created, status="sent", incident=None, attempts=0, **fields):
    row = Notification.objects.create(
        channel=channel,
        monitor=incident.monitor if incident else None,
        incident=incident,
        event=Notification.Event.FIRED,
        idempotency_key=f"retention:{next(_keys)}:{uuid.uuid4().hex[:8]}",
        payload={"version": 1},
        status=status,
        created_at=created,
        **{"sent_at": created if status == "sent" else None, **fields},
    )
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(notification=row, number=n, outcome="sent", started_at=created)
        for n in range(1, attempts + 1)
    )
    return row


def incident(monitor, *, opened, resolved=None):
    return Incident.objects.create(monitor=monitor, opened_at=opened, resolved_at=resolved)


def left(model, rows):
    return set(model.objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", flat=True))


@pytest.mark.django_db
def test_it_deletes_settled_notifications_past_the_age_with_their_attempts_and_keeps_the_rest():
    now = timezone.now()
    cutoff = now - 30 * DAY
    channel = ChannelFactory()
    monitor = MonitorFactory(owner=channel.owner)
    still_open = incident(monitor, opened=now - 40 * DAY)
    closed = incident(monitor, opened=now - 50 * DAY, resolved=now - 45 * DAY)
    gone = [
        notification(channel, created=now - 31 * DAY, attempts=3),
        notification(channel, created=cutoff - timedelta(microseconds=1)),  # just past
        notification(channel, created=now - 40 * DAY, status="failed", attempts=2),  # dead
        notification(channel, created=now - 46 * DAY, incident=closed),
        notification(channel, created=now - 46 * DAY, status="withheld", incident=closed),
    ]
    kept = [
        notification(channel, created=cutoff),  # exactly at the boundary
        notification(channel, created=now - DAY),
        notification(channel, created=now - 60 * DAY, status="pending", attempts=5),  # retrying
        notification(channel, created=now - 60 * DAY, status="sending"),
        notification(channel, created=now - 40 * DAY, incident=still_open),  # incident open
        notification(  # a dead letter retried (resend) since the cutoff
            channel, created=now - 40 * DAY, status="failed", retry_until=now + 2 * DAY
        ),
        notification(  # written long ago, delivered only recently
            channel, created=now - 40 * DAY, status="sent", sent_at=now - DAY
        ),
    ]

    assert retention.dry_run(now=now, only={"notifications"}) == {"notifications": len(gone)}
    report = retention.run(now=now, only={"notifications"})

    assert report.deleted == {"notifications": len(gone)}
    assert report.finished
    assert left(Notification, gone) == set()
    assert left(Notification, kept) == {n.pk for n in kept}
    assert not DeliveryAttempt.objects.filter(notification_id__in=[n.pk for n in gone]).exists()
    assert DeliveryAttempt.objects.filter(notification=kept[2]).count() == 5


@pytest.mark.django_db
def test_it_deletes_old_resolved_incidents_but_keeps_open_referenced_and_latest_ones():
    now = timezone.now()
    cutoff = now - 90 * DAY
    channel = ChannelFactory()
    monitor, quiet, busy = (MonitorFactory(owner=channel.owner) for _ in range(3))
    gone = [
        incident(monitor, opened=now - 200 * DAY, resolved=now - 199 * DAY),
        incident(monitor, opened=now - 100 * DAY, resolved=cutoff - timedelta(microseconds=1)),
    ]
    referenced = incident(monitor, opened=now - 150 * DAY, resolved=now - 149 * DAY)
    notification(channel, created=now - DAY, incident=referenced)  # a kept row points at it
    kept = [
        referenced,
        incident(monitor, opened=now - 95 * DAY, resolved=cutoff),  # at the boundary
        incident(monitor, opened=now - 300 * DAY),  # open for ages
        incident(quiet, opened=now - 400 * DAY, resolved=now - 399 * DAY),  # quiet's latest
        incident(busy, opened=now - DAY, resolved=now - DAY / 2),
    ]
    gone.append(incident(busy, opened=now - 500 * DAY, resolved=now - 499 * DAY))

    report = retention.run(now=now, only={"incidents"})

    assert report.deleted == {"incidents": len(gone)}
    assert left(Incident, gone) == set()
    assert left(Incident, kept) == {i.pk for i in kept}


@pytest.mark.django_db
def test_it_deletes_old_processed_stripe_events_expired_sessions_and_old_admin_log_rows():
    now = timezone.now()

    def event(status, age):
        row = StripeEvent.objects.create(
            stripe_event_id=f"evt_{uuid.uuid4().hex}",
            type="invoice.paid",
            created=now - age,
            payload={},
            status=status,
        )
        StripeEvent.objects.filter(pk=row.pk).update(received_at=now - age)
        return row

    old_events = [event("processed", 91 * DAY), event("ignored", 200 * DAY)]
    kept_events = [event("failed", 200 * DAY), event("processed", 89 * DAY)]
    expired = Session.objects.create(session_key="a" * 32, session_data="", expire_date=now - DAY)
    live = Session.objects.create(session_key="b" * 32, session_data="", expire_date=now + DAY)
    user = UserFactory()
    logs = [
        LogEntry.objects.create(user=user, action_flag=ADDITION, object_repr="x") for _ in range(2)
    ]
    LogEntry.objects.filter(pk=logs[0].pk).update(action_time=now - 366 * DAY)

    report = retention.run(now=now, only={"stripe_events", "expired_sessions", "admin_log"})

    assert report.deleted == {"stripe_events": 2, "expired_sessions": 1, "admin_log": 1}
    assert left(StripeEvent, old_events) == set()
    assert left(StripeEvent, kept_events) == {e.pk for e in kept_events}
    assert left(Session, [expired, live]) == {live.pk}
    assert left(LogEntry, logs) == {logs[1].pk}


@pytest.mark.django_db
def test_an_age_of_zero_keeps_everything(settings):
    settings.RETENTION_NOTIFICATIONS_DAYS = 0
    channel = ChannelFactory()
    old = notification(channel, created=timezone.now() - 3000 * DAY)

    assert retention.run(only={"notifications"}).deleted == {"notifications": 0}
    assert left(Notification, [old]) == {old.pk}


@pytest.mark.django_db
def test_each_statement_deletes_at_most_the_batch_size():
    channel = ChannelFactory()
    for _ in range(25):
        notification(channel, created=timezone.now() - 40 * DAY, attempts=1)
    now = timezone.now()
    target = retention.targets(now=now, only={"notifications"})[0]

    assert pruning.delete_batch(target, now=now, batch=10) == 10
    report = retention.run(now=now, batch=10, only={"notifications"})

    assert (report.batches, report.deleted["notifications"]) == (2, 15)  # 10, then 5
    assert pruning.delete_batch(target, now=now, batch=5000) == 0  # capped, nothing left
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_a_spent_time_budget_stops_the_run_and_leaves_the_rest_for_the_next():
    channel = ChannelFactory()
    for _ in range(6):
        notification(channel, created=timezone.now() - 40 * DAY)
    ticks = iter(range(100))  # each look at the clock is one second later
    now = timezone.now()

    report = pruning.prune(
        retention.targets(now=now, only={"notifications"}),
        now=now,
        batch=2,
        budget_seconds=2.5,
        clock=lambda: float(next(ticks)),
    )

    assert not report.finished
    assert report.deleted == {"notifications": 4}  # two batches of two in the budget
    assert Notification.objects.count() == 2


@pytest.mark.django_db
def test_prune_command_dry_run_counts_and_the_command_deletes():
    channel = ChannelFactory()
    for _ in range(3):
        notification(channel, created=timezone.now() - 40 * DAY)
    notification(channel, created=timezone.now())

    out = io.StringIO()
    call_command("prune", "--dry-run", stdout=out)
    assert "notifications" in out.getvalue()
    assert "3 rows would be deleted" in out.getvalue()
    assert Notification.objects.count() == 4

    out = io.StringIO()
    call_command("prune", "--only", "notifications", "--batch-size", "2", stdout=out)
    assert "3 rows deleted in 2 batches" in out.getvalue()
    assert Notification.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_row_another_transaction_holds_is_skipped_not_waited_for():
    """A resend (or any delivery) holding an old row's lock: the prune takes the others and
    returns at once; the held row goes on the next run."""
    channel = ChannelFactory()
    old = [notification(channel, created=timezone.now() - 40 * DAY) for _ in range(3)]
    held, released = threading.Event(), threading.Event()

    def holder():
        try:
            with transaction.atomic():
                Notification.objects.select_for_update().get(pk=old[0].pk)
                held.set()
                released.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    try:
        report = retention.run(only={"notifications"})
        assert report.deleted == {"notifications": 2}  # while the lock is still held
        assert thread.is_alive()
    finally:
        released.set()
        thread.join(30)
    assert left(Notification, old) == {old[0].pk}
    assert retention.run(only={"notifications"}).deleted == {"notifications": 1}


@pytest.mark.django_db(transaction=True)
def test_the_pipeline_keeps_evaluating_and_notifying_while_a_prune_runs(
    hot_monitor, influx_db, settings
):
    """An evaluation thread firing and resolving the monitor over and over while a prune
    deletes thousands of old outbox rows in small batches: no error on either side, and every
    row the pipeline wrote is still there."""
    Monitor.objects.filter(pk=hot_monitor.pk).update(aggregation="last")  # each flip counts
    channel = hot_monitor.channels.first()
    now = timezone.now()
    Notification.objects.bulk_create(
        Notification(
            channel=channel,
            monitor=hot_monitor,
            event="fired",
            idempotency_key=f"old:{i}",
            payload={},
            status="sent",
            created_at=now - 40 * DAY,
        )
        for i in range(3000)
    )
    errors: list[BaseException] = []
    flips = 0
    started, done = threading.Event(), threading.Event()

    def evaluate():
        nonlocal flips
        try:
            for i in range(12):
                write(influx_db, HOT if i % 2 == 0 else COOL, ago=1)
                due_again(hot_monitor)
                tick()
                flips += 1
                started.set()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            done.set()
            connection.close()

    thread = threading.Thread(target=evaluate)
    thread.start()
    assert started.wait(60)  # the prune starts while the pipeline is mid-run
    settings.RETENTION_PAUSE_SECONDS = 0.01
    report = retention.run(batch=100, only={"notifications", "incidents"})
    thread.join(120)

    assert not errors, errors
    assert done.is_set()
    assert flips == 12
    assert report.deleted["notifications"] == 3000
    assert report.batches >= 30
    hot_monitor.refresh_from_db()
    assert hot_monitor.status == Status.OK  # the last flip resolved it
    fresh = Notification.objects.filter(monitor=hot_monitor).exclude(
        idempotency_key__startswith="old:"
    )
    assert fresh.filter(event="fired").count() == 6 * 2  # 6 firings x 2 channels
    assert fresh.filter(event="resolved").count() == 6 * 2


def test_beat_runs_the_prune_every_five_minutes_within_its_time_limit():
    from growalert.celery import app
    from monitors.tasks import prune_old_rows

    entry = app.conf.beat_schedule["prune-old-rows"]

    assert entry["task"] == "monitors.tasks.prune_old_rows"
    assert entry["schedule"] == 300.0
    assert (prune_old_rows.soft_time_limit or 0) > 240  # longest RETENTION_TIME_BUDGET_SECONDS
