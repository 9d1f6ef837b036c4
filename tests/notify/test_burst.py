"""A burst of outbox rows (one round of alerts) is delivered by one task whose sends run side by
side in the delivery process (monitors/notify/burst.py), each row still claimed once and held to
its receiver's limits. Real loopback receivers, Postgres and Redis; the pool's threads use their
own connections, so these tests commit (transaction=True)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from monitors.models import Notification
from monitors.notify import acknowledge, burst, delivery, queue
from monitors.notify.tasks import deliver_notifications
from monitors.vocabulary import AckRoute
from tests.factories import ChannelFactory, UserFactory
from tests.notify.test_delivery import outbox_row
from tests.notify.test_escalation import OPENED
from tests.notify.test_withheld_after_acknowledgement import escalated_row

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _pool_closed_after():
    yield
    burst.close_pool()


def _burst(receiver, count: int) -> list[Notification]:
    channel = ChannelFactory(config={"url": receiver.url})
    return [outbox_row(channel) for _ in range(count)]


def test_a_burst_is_sent_side_by_side_each_row_once(receiver, settings) -> None:
    settings.NOTIFY_RECEIVER_CONCURRENCY = 64
    receiver.hang = 0.2  # every send takes a while: sent one after another, none would overlap
    rows = _burst(receiver, 12)

    outcomes = deliver_notifications([str(n.pk) for n in rows])

    assert outcomes == {"sent": 12}
    assert receiver.max_in_flight > 1
    keys = [hit.headers["Growalert-Idempotency-Key"] for hit in receiver.hits]
    assert sorted(keys) == sorted(n.idempotency_key for n in rows)
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_two_tasks_for_the_same_burst_send_each_row_once(receiver, settings) -> None:
    settings.NOTIFY_RECEIVER_CONCURRENCY = 64
    receiver.hang = 0.1
    ids = [str(n.pk) for n in _burst(receiver, 10)]
    results: list[dict[str, int]] = []

    threads = [
        threading.Thread(target=lambda: results.append(dict(burst.deliver_burst(ids))))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(receiver.hits) == 10
    assert sum(r.get("sent", 0) for r in results) == 10
    assert sum(r.get("skipped", 0) for r in results) == 10


def test_the_receivers_limit_holds_inside_a_burst(receiver, settings) -> None:
    settings.NOTIFY_RECEIVER_CONCURRENCY = 2
    receiver.hang = 0.3
    rows = _burst(receiver, 8)

    outcomes = burst.deliver_burst([n.pk for n in rows])

    assert receiver.max_in_flight <= 2
    assert outcomes["sent"] >= 2
    assert outcomes["sent"] + outcomes["deferred"] == 8
    waiting = Notification.objects.filter(status=Notification.DeliveryStatus.PENDING)
    assert waiting.count() == outcomes["deferred"]  # put back for later, not lost


def test_rows_written_together_are_queued_as_one_burst_and_a_single_row_alone(
    monkeypatch,
) -> None:
    sent: list[tuple[str, object]] = []
    monkeypatch.setattr(
        queue.burst_task(), "apply_async", lambda args, **kw: sent.append(("burst", args[0]))
    )
    monkeypatch.setattr(
        queue.deliver_task(), "apply_async", lambda args, **kw: sent.append(("one", args[0]))
    )

    queue.enqueue([f"id{i}" for i in range(queue.BURST_SIZE + 1)])
    queue.enqueue(["alone"])

    assert [kind for kind, _ in sent] == ["burst", "burst", "one"]
    assert len(sent[0][1]) == queue.BURST_SIZE  # type: ignore[arg-type]
    assert sent[1][1] == [f"id{queue.BURST_SIZE}"]
    assert sent[2][1] == "alone"


def _connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def _in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """``work()`` on a thread of its own (as a delivery task runs), its connection closed after."""
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(work())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, results


def test_a_bursts_sends_leave_together_and_hold_no_database_connection(receiver, settings):
    settings.NOTIFY_RECEIVER_CONCURRENCY = 64
    settings.NOTIFY_BURST_CONCURRENCY = 32
    receiver.hang = 1.0
    ids = [str(n.pk) for n in _burst(receiver, 20)]
    before = _connections()

    thread, results = _in_thread(lambda: dict(burst.deliver_burst(ids)))
    deadline = time.monotonic() + 10
    while receiver.in_flight < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    during = _connections()
    thread.join(15)

    assert receiver.max_in_flight == 20  # every send under way at once
    # the burst's task holds one connection; its sends none (the claim was one statement)
    assert during - before <= 1
    assert results == [{"sent": 20}]
    assert set(Notification.objects.values_list("attempts", flat=True)) == {1}


def test_a_bursts_leases_are_renewed_while_it_sends_and_each_row_is_sent_once(
    receiver, settings, monkeypatch
):
    import httpx

    from monitors.notify import http

    settings.NOTIFY_RECEIVER_CONCURRENCY = 64
    settings.NOTIFY_LEASE_SECONDS = 4  # renewed every second while the sends run
    monkeypatch.setattr(http, "TIMEOUT", httpx.Timeout(10.0, connect=3.0))
    receiver.hang = 6.0  # longer than the lease
    ids = [str(n.pk) for n in _burst(receiver, 3)]

    thread, results = _in_thread(lambda: dict(burst.deliver_burst(ids)))
    time.sleep(5.0)  # every first lease has run out by now, had they not been renewed
    assert delivery.claim_many(ids) == []  # what the sweeper would find
    thread.join(15)

    assert results == [{"sent": 3}]
    assert len(receiver.hits) == 3
    assert set(Notification.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_a_row_withheld_in_a_burst_is_not_sent_and_the_others_are(receiver):
    alice = UserFactory(username="alice")
    hook = ChannelFactory(owner=alice, kind="webhook", config={"url": receiver.url})
    incident, escalated = escalated_row(alice, hook)
    fired = outbox_row(hook)
    with time_machine.travel(OPENED + timedelta(minutes=5, seconds=1), tick=False):
        acknowledge.acknowledge(incident.pk, via=AckRoute.API, by=alice)
        fired.next_attempt_at = timezone.now()
        fired.save(update_fields=["next_attempt_at"])
        outcomes = burst.deliver_burst([escalated.pk, fired.pk])

    assert outcomes == {"withheld": 1, "sent": 1}
    assert [hit.headers["Growalert-Idempotency-Key"] for hit in receiver.hits] == [
        fired.idempotency_key
    ]
    escalated.refresh_from_db()
    assert escalated.status == Notification.DeliveryStatus.WITHHELD


def test_the_first_bursts_sends_build_one_tls_context_between_them(monkeypatch):
    from monitors.notify import http

    built: list[object] = []
    create = ssl.create_default_context

    def slow_create(*args, **kwargs):
        built.append(threading.current_thread())
        time.sleep(0.05)  # loading the CA bundle takes a while: the other sends arrive meanwhile
        return create(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", slow_create)
    http._built_once.cache_clear()
    try:
        contexts: list[object] = []
        threads = [
            threading.Thread(target=lambda: contexts.append(http.ssl_context())) for _ in range(20)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        http._built_once.cache_clear()

    assert len(built) == 1
    assert len(contexts) == 20
    assert len({id(c) for c in contexts}) == 1
