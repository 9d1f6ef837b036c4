"""A burst of outbox rows (one round of alerts) is delivered by one task whose sends run side by
side in the delivery process (monitors/notify/burst.py), each row still claimed once and held to
its receiver's limits. Real loopback receivers, Postgres and Redis; the pool's threads use their
own connections, so these tests commit (transaction=True)."""

from __future__ import annotations

import threading

import pytest

from monitors.models import Notification
from monitors.notify import burst, queue
from monitors.notify.tasks import deliver_notifications
from tests.factories import ChannelFactory
from tests.notify.test_delivery import outbox_row

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
