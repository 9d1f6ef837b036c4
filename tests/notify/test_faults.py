"""Faults during a send, on real services: Postgres restarting right after the receiver
accepted (the outcome is still recorded, nothing is sent twice), and a worker killed mid-send
(its lost attempt appears in the delivery log)."""

from __future__ import annotations

import collections
import os
import signal
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from monitors.models import Notification
from monitors.notify import delivery
from monitors.notify.tasks import deliver_notification
from tests.conftest import services, start_celery_worker, stop_celery_worker
from tests.factories import ChannelFactory
from tests.notify.conftest import Receiver
from tests.notify.test_delivery import outbox_row
from tests.notify.test_end_to_end import _database_url

pytestmark = pytest.mark.django_db(transaction=True)


class RestartingReceiver(Receiver):
    """Stops Postgres before answering its first request 200 (every database connection is
    terminated, the sent marker cannot be committed), and starts it again a second later."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.restarted = threading.Event()
        handler = self.server.RequestHandlerClass
        receiver = self
        original = handler.do_POST  # type: ignore[attr-defined]

        def do_post(request: object) -> None:
            if not receiver.restarted.is_set():
                receiver.restarted.set()
                assert services("down", "postgres").returncode == 0
                threading.Timer(1.0, lambda: services("up", "postgres")).start()
            original(request)

        handler.do_POST = do_post  # type: ignore[attr-defined]


@pytest.fixture
def restarting_receiver(settings, stopped_service):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    stopped_service.append("postgres")  # up again after the test, whatever happens
    server = RestartingReceiver()
    yield server
    server.close()


def test_postgres_restarting_right_after_the_receiver_accepted_sends_once(restarting_receiver):
    notification = outbox_row(ChannelFactory(config={"url": restarting_receiver.url}))

    outcome = delivery.deliver(notification.pk)  # the worker's connection dies after the 200

    assert outcome == "sent"
    assert restarting_receiver.restarted.is_set()
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 1)
    assert list(notification.delivery_attempts.values_list("number", "outcome")) == [(1, "sent")]
    # Nothing is left for the sweeper or a lease expiry to send again.
    assert delivery.deliver(notification.pk) == "skipped"
    assert len(restarting_receiver.hits) == 1


def test_a_worker_killed_mid_send_leaves_the_lost_attempt_in_the_log(receiver, settings):
    settings.NOTIFY_LEASE_SECONDS = 4
    receiver.hang = 30  # the first request hangs: the worker is killed while sending
    notification = outbox_row(ChannelFactory(config={"url": receiver.url}))
    queue = f"test-faults-{os.getpid()}"
    worker, log = start_celery_worker(
        "faults",
        DATABASE_URL=_database_url(),
        CELERY_QUEUE=queue,
        WEBHOOKS_ALLOW_PRIVATE_ADDRESSES="true",
        NOTIFY_LEASE_SECONDS="4",
    )
    try:
        deliver_notification.apply_async(args=(str(notification.pk),), queue=queue)
        deadline = time.monotonic() + 60
        while not receiver.hits and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.hits, "the worker never sent"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        stop_celery_worker(worker, log)
    receiver.hang = 0
    connection.close()
    notification.refresh_from_db()
    assert notification.status == "sending"
    assert delivery.deliver(notification.pk) == "skipped"  # its lease still runs
    time.sleep(max(0.0, (notification.claimed_until - timezone.now()).total_seconds()))
    while delivery.deliver(notification.pk) == "skipped" and time.monotonic() < deadline:
        time.sleep(0.2)

    notification.refresh_from_db()
    assert notification.status == "sent"
    assert notification.attempts == 2
    attempts = list(notification.delivery_attempts.values_list("number", "outcome", "error"))
    assert [(number, outcome) for number, outcome, _ in attempts] == [
        (1, "unknown"),
        (2, "sent"),
    ]
    assert "worker stopped before recording the outcome" in attempts[0][2]
    keys = {hit.headers["Growalert-Idempotency-Key"] for hit in receiver.hits}
    assert keys == {notification.idempotency_key}


def test_a_send_slower_than_the_lease_keeps_its_row_and_is_sent_once(
    receiver, settings, monkeypatch
):
    import httpx

    from monitors.notify import http

    settings.NOTIFY_LEASE_SECONDS = 4  # renewed every second while the send runs
    monkeypatch.setattr(http, "TIMEOUT", httpx.Timeout(10.0, connect=3.0))
    receiver.hang = 6.0  # longer than the lease
    notification = outbox_row(ChannelFactory(config={"url": receiver.url}))
    outcomes: list[str] = []

    def first_worker() -> None:
        try:
            outcomes.append(delivery.deliver(notification.pk))
        finally:
            connection.close()

    sending = threading.Thread(target=first_worker)
    sending.start()
    time.sleep(5.0)  # the first lease has run out by now, had it not been renewed
    assert delivery.deliver(notification.pk) == "skipped"  # what the sweeper would find
    sending.join(15)

    assert outcomes == ["sent"]
    assert len(receiver.hits) == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 1)


def test_a_postgres_restart_during_a_burst_through_a_real_worker_sends_each_key_once(
    receiver, stopped_service
):
    channel = ChannelFactory(config={"url": receiver.url})
    rows = [outbox_row(channel) for _ in range(50)]
    queue = f"test-burst-{os.getpid()}"
    worker, log = start_celery_worker(
        "burst",
        DATABASE_URL=_database_url(),
        CELERY_QUEUE=queue,
        WEBHOOKS_ALLOW_PRIVATE_ADDRESSES="true",
    )
    stopped_service.append("postgres")
    try:
        for row in rows:
            deliver_notification.apply_async(args=(str(row.pk),), queue=queue)
        deadline = time.monotonic() + 60
        while len(receiver.hits) < 15 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert services("down", "postgres").returncode == 0  # terminates every connection
        assert services("up", "postgres").returncode == 0
        connection.close()
        sent = 0
        while time.monotonic() < deadline:
            sent = Notification.objects.filter(channel=channel, status="sent").count()
            if sent == len(rows):
                break
            time.sleep(0.2)
    finally:
        stop_celery_worker(worker, log)

    assert sent == len(rows)  # none lost
    per_key = collections.Counter(hit.headers["Growalert-Idempotency-Key"] for hit in receiver.hits)
    assert set(per_key) == {row.idempotency_key for row in rows}
    assert max(per_key.values()) == 1  # none sent twice
