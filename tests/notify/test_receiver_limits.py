"""Faults stay local: a dead or slow receiver costs its own notifications only.

Evaluation and delivery run on separate queues and worker pools; each receiver gets at most
NOTIFY_RECEIVER_CONCURRENCY sends at once and a circuit breaker (monitors/notify/breaker.py).
Real receivers on loopback, real Redis and Postgres, real Celery workers for the end to end.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from billing.gating import comp
from growalert.celery import app, declared_queues
from monitors.models import Notification, Schedule
from monitors.notify import breaker, delivery
from monitors.notify.tasks import deliver_notification
from tests.conftest import start_celery_worker, stop_celery_worker
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory, UserFactory
from tests.notify.test_delivery import outbox_row


def _due_now(notification: Notification) -> None:
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())


def test_delivery_tasks_go_to_the_delivery_queue_and_everything_else_to_evaluation() -> None:
    app.loader.import_default_modules()
    queue = {name: app.amqp.router.route({}, name)["queue"].name for name in app.tasks}

    assert queue["monitors.notify.tasks.deliver_notification"] == "delivery"
    assert queue["monitors.notify.tasks.deliver_due_notifications"] == "delivery"
    for entry in app.conf.beat_schedule.values():
        expected = "delivery" if entry["task"].startswith("monitors.notify.") else "evaluation"
        assert queue[entry["task"]] == expected, entry["task"]
    assert queue["monitors.tasks.evaluate_monitors"] == "evaluation"
    # each queue has its own exchange and key: a message for one never lands in the other
    bindings = {q.name: (q.exchange.name, q.routing_key) for q in declared_queues()}
    assert bindings == {"evaluation": ("evaluation", "evaluation"), "delivery": ("delivery",) * 2}


@pytest.mark.django_db
def test_the_circuit_opens_after_k_transient_failures_and_defers_without_counting(
    receiver, settings
):
    settings.NOTIFY_BREAKER_FAILURES = 2
    settings.NOTIFY_BREAKER_COOLDOWN_SECONDS = 1.0
    settings.NOTIFY_MAX_ATTEMPTS = 3  # deferrals counted as attempts would make it give up
    receiver.script = [503, 503, 200]
    notification = outbox_row(ChannelFactory(config={"url": receiver.url}))

    assert delivery.deliver(notification.pk) == "retry"
    _due_now(notification)
    assert delivery.deliver(notification.pk) == "retry"  # the second in a row: circuit opens
    for _ in range(3):
        _due_now(notification)
        before = timezone.now()
        assert delivery.deliver(notification.pk) == "deferred"
        notification.refresh_from_db()
        assert notification.status == "pending"
        assert notification.attempts == 2  # not an attempt
        assert notification.last_error == "deferred: receiver open"
        assert notification.next_attempt_at > before + timedelta(seconds=0.2)
    assert len(receiver.hits) == 2  # nothing was sent while open
    assert notification.delivery_attempts.count() == 2

    time.sleep(1.1)  # the cool-down: half-open, one trial
    _due_now(notification)
    assert delivery.deliver(notification.pk) == "sent"

    notification.refresh_from_db()
    assert notification.status == "sent"
    assert notification.attempts == 3
    assert len(receiver.accepted) == 1
    assert "open_until" not in breaker.state(notification.channel)  # closed again


@pytest.mark.django_db
def test_a_failed_trial_reopens_the_circuit_for_longer_and_another_receiver_is_unaffected(
    receiver, settings
):
    settings.NOTIFY_BREAKER_FAILURES = 2
    settings.NOTIFY_BREAKER_COOLDOWN_SECONDS = 0.5
    receiver.script = [503]
    dead = outbox_row(ChannelFactory(config={"url": receiver.url}))
    for _ in range(2):
        _due_now(dead)
        assert delivery.deliver(dead.pk) == "retry"
    time.sleep(0.6)
    _due_now(dead)
    assert delivery.deliver(dead.pk) == "retry"  # the trial, and it failed
    _due_now(dead)
    assert delivery.deliver(dead.pk) == "deferred"  # open again, for twice as long (1 s)
    time.sleep(0.6)
    _due_now(dead)
    assert delivery.deliver(dead.pk) == "deferred"  # past the first cool-down, still open
    assert len(receiver.hits) == 3
    time.sleep(0.5)
    _due_now(dead)
    assert delivery.deliver(dead.pk) == "retry"  # the next trial
    assert len(receiver.hits) == 4

    elsewhere = receiver.url.replace("127.0.0.1", "localhost")  # another receiver (host:port)
    other = outbox_row(ChannelFactory(config={"url": elsewhere}))
    receiver.script = [200]
    assert delivery.deliver(other.pk) == "sent"


@pytest.mark.django_db(transaction=True)
def test_no_more_than_n_sends_reach_one_receiver_at_once(receiver, settings, monkeypatch):
    settings.NOTIFY_RECEIVER_CONCURRENCY = 3
    retried: list[float] = []
    monkeypatch.setattr(
        deliver_notification, "apply_async", lambda args, countdown: retried.append(countdown)
    )
    receiver.hang = 1.0  # longer than a send waits for a slot (NOTIFY_RECEIVER_BUSY_WAIT_SECONDS)
    channel = ChannelFactory(config={"url": receiver.url})

    outcomes = _deliver_at_once([outbox_row(channel) for _ in range(10)])

    assert receiver.max_in_flight == 3
    assert sorted(outcomes) == ["deferred"] * 7 + ["sent"] * 3
    assert len(retried) == 7  # every deferred one is scheduled again, none lost
    deferred = Notification.objects.filter(status="pending")
    assert deferred.count() == 7
    assert set(deferred.values_list("attempts", flat=True)) == {0}
    assert breaker.state(channel)["in_flight"] == 0  # every slot handed back


@pytest.mark.django_db(transaction=True)
def test_a_burst_to_one_receiver_waits_for_its_slots_instead_of_being_deferred(
    receiver, settings, monkeypatch
):
    settings.NOTIFY_RECEIVER_CONCURRENCY = 3
    retried: list[float] = []
    monkeypatch.setattr(
        deliver_notification, "apply_async", lambda args, countdown: retried.append(countdown)
    )
    receiver.hang = 0.05  # a receiver answering in 50 ms: 10 sends, 3 at a time, ~0.2 s
    channel = ChannelFactory(config={"url": receiver.url})
    started = time.monotonic()

    outcomes = _deliver_at_once([outbox_row(channel) for _ in range(10)])

    assert outcomes == ["sent"] * 10
    assert time.monotonic() - started < 5  # not a deferral's second (or more) later
    assert receiver.max_in_flight == 3  # the limit still holds
    assert retried == []
    assert breaker.state(channel)["in_flight"] == 0

    settings.NOTIFY_RECEIVER_BUSY_WAIT_SECONDS = 0  # no waiting: the excess is deferred at once
    outcomes = _deliver_at_once([outbox_row(channel) for _ in range(10)])
    assert "deferred" in outcomes


def _deliver_at_once(notifications: list[Notification]) -> list[str]:
    """Delivers each notification on its own thread, all starting together."""
    outcomes: list[str] = []
    start = threading.Barrier(len(notifications))

    def run(notification: Notification) -> None:
        try:
            start.wait()
            outcomes.append(delivery.deliver(notification.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in notifications]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_hanging_receiver_neither_delays_evaluation_nor_loses_its_notifications(
    receiver, influx_db
):
    """One evaluation worker (solo: a single hung send would stall it) on the evaluation queue
    with beat, one threads-pool delivery worker on the delivery queue. While the receiver
    hangs, other monitors are claimed on time; afterwards every notification arrives."""
    receiver.hang = 60.0  # far beyond the 5 s send timeout
    customer = UserFactory(username="other-customer")
    comp(customer)
    source = SourceFactory(owner=customer, database=influx_db.database)
    influx_db.write("gro01", "temperature", [(2, 21.0)], {"device": "greenhouse-1"})
    monitors = [
        MonitorFactory(
            owner=customer,
            source=source,
            aggregation="last",
            window=timedelta(minutes=5),
            interval=timedelta(seconds=10),
            critical=35,
            next_due_at=timezone.now(),
        )
        for _ in range(3)
    ]
    hanging_owner = UserFactory(username="hanging-owner")
    comp(hanging_owner)
    channel = ChannelFactory(owner=hanging_owner, config={"url": receiver.url})
    notifications = [outbox_row(channel) for _ in range(6)]

    tag = os.getpid()
    queues = {
        "CELERY_EVALUATION_QUEUE": f"test-evaluation-{tag}",
        "CELERY_DELIVERY_QUEUE": f"test-delivery-{tag}",
    }
    env: dict[str, Any] = {
        "DATABASE_URL": _database_url(),
        "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
        "NOTIFY_RECEIVER_CONCURRENCY": "2",
        "NOTIFY_BREAKER_FAILURES": "3",
        "NOTIFY_BREAKER_COOLDOWN_SECONDS": "4",
        "NOTIFY_RETRY_BASE_SECONDS": "0.5",
        "NOTIFY_RETRY_MAX_SECONDS": "4",
        **queues,
    }
    evaluation, evaluation_log = start_celery_worker(
        "hang-evaluation", beat=True, queues=queues["CELERY_EVALUATION_QUEUE"], **env
    )
    sender, sender_log = start_celery_worker(
        "hang-delivery",
        pool="threads",
        concurrency=8,
        queues=queues["CELERY_DELIVERY_QUEUE"],
        **env,
    )
    lags: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the loop runs: first evaluations done
            if all(m.last_evaluated_at for m in _fresh(monitors)):
                break
            time.sleep(0.2)
        for notification in notifications:
            deliver_notification.apply_async(
                args=(str(notification.pk),), queue=queues["CELERY_DELIVERY_QUEUE"]
            )
        evaluated_before = {m.pk: m.last_evaluated_at for m in _fresh(monitors)}
        hang_until = time.monotonic() + 25
        while time.monotonic() < hang_until:
            now = timezone.now()
            for due in Schedule.objects.filter(monitor__in=monitors).values_list(
                "next_due_at", flat=True
            ):
                lags.append(max(0.0, (now - due).total_seconds()))
            time.sleep(0.25)
        evaluated_during = {m.pk: m.last_evaluated_at for m in _fresh(monitors)}
        hits_while_hanging = len(receiver.hits)

        receiver.hang = 0  # the receiver recovers
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            if Notification.objects.filter(channel=channel, status="sent").count() == 6:
                break
            time.sleep(0.25)
    finally:
        stop_celery_worker(sender, sender_log)
        stop_celery_worker(evaluation, evaluation_log)

    assert max(lags) < 3.0, f"a monitor waited {max(lags):.1f}s to be claimed"
    for monitor in monitors:  # evaluated, not only claimed
        assert evaluated_during[monitor.pk] > evaluated_before[monitor.pk]
    assert receiver.max_in_flight <= 2
    # 25 s of 5 s timeouts on 2 slots would be 10 sends; the open circuit let fewer through
    assert hits_while_hanging < 10
    sent = Notification.objects.filter(channel=channel, status="sent")
    assert sent.count() == 6, list(
        Notification.objects.filter(channel=channel).values_list("status", "attempts", "last_error")
    )
    keys = {hit.headers["Growalert-Idempotency-Key"] for hit in receiver.accepted}
    assert keys == {n.idempotency_key for n in notifications}


def _fresh(monitors: list[Any]) -> list[Any]:
    for monitor in monitors:
        monitor.refresh_from_db()
    return monitors


@pytest.mark.django_db
def test_a_slack_receiver_is_keyed_by_a_digest_never_by_its_secret_url() -> None:
    url = "https://hooks.slack.com/services/T000/B000/very-secret-token"
    slack = ChannelFactory(kind="slack", config={"url": url})
    webhook = ChannelFactory(config={"url": "https://user:pw@Hooks.Example.com/t/secret?k=1"})
    email = ChannelFactory(kind="email", config={"address": "a@example.com"})

    key = breaker.receiver_of(slack)
    assert key is not None
    assert key.startswith("slack:")
    assert "secret" not in key
    assert breaker.receiver_of(webhook) == "hooks.example.com:443"
    assert breaker.receiver_of(email) is None  # the deployment's own relay: not limited


@pytest.mark.django_db
def test_without_redis_a_send_goes_ahead_and_is_recorded_once(receiver, stopped_service):
    from tests.conftest import services

    notification = outbox_row(ChannelFactory(config={"url": receiver.url}))
    stopped_service.append("redis")
    assert services("down", "redis").returncode == 0

    assert delivery.deliver(notification.pk) == "sent"  # the limits protect, never block

    notification.refresh_from_db()
    assert notification.status == "sent"
    assert len(receiver.accepted) == 1
