"""Notification delivery to a local webhook receiver, through real Celery workers.

1. Throughput: BENCH_BURST (2000) outbox rows committed at once and enqueued; deliveries per
   second from the enqueue to the last receipt.
2. Latency at offered rates: one row committed every 1/rate s for BENCH_SECONDS (15), for each
   rate in BENCH_RATES (200,150,100 per second); per row, the time from its commit (when
   ``transaction.on_commit`` hands it to delivery, as the evaluation pipeline does) to its
   receipt by the webhook receiver: p50/p90/p99/max.

Everything real on this machine: Postgres (the development database), Redis as the broker, a
Celery worker (BENCH_POOL prefork, BENCH_CONCURRENCY 4) on a private queue, signed webhooks over
loopback to a threaded HTTP receiver in this process. The bench user, its channel and its rows
are deleted afterwards.

    .venv/bin/python bench/bench_notify.py
    BENCH_RATES=300,200 BENCH_POOL=threads BENCH_CONCURRENCY=8 \
        .venv/bin/python bench/bench_notify.py
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from typing import Any

import common  # bench/common.py: this directory is first on sys.path

QUEUE = f"bench-notify-{os.getpid()}"
common.setup_django(
    env={
        "CELERY_QUEUE": QUEUE,  # this process and its workers share a private queue
        "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",  # the receiver is on loopback
    }
)

from django.db import transaction

from monitors.models import Channel, Notification
from monitors.notify import queue

RATES = [float(r) for r in os.environ.get("BENCH_RATES", "200,150,100").split(",")]
SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))
BURST = int(os.environ.get("BENCH_BURST", "2000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
POOL = os.environ.get("BENCH_POOL", "prefork")

PAYLOAD: dict[str, Any] = common.PAYLOAD | {
    "query": 'SELECT mean("temperature") FROM "gro01" WHERE time > now() - 5m',
    "points": [[f"2026-11-24T08:{m:02d}:00+00:00", 30.0 + m / 10] for m in range(60)],
}


class Receiver(common.ArrivalReceiver):
    """Records when each idempotency key first arrives (time.monotonic, this process)."""

    def wait_for(self, keys: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(key in self.received for key in keys):
                    return True
            time.sleep(0.01)
        return False


def row(channel: Channel) -> Notification:
    return Notification(
        channel=channel,
        event=Notification.Event.FIRED,
        idempotency_key=f"bench:{uuid.uuid4().hex}",
        payload=PAYLOAD,
    )


def burst(channel: Channel, receiver: Receiver, count: int) -> tuple[float, bool]:
    rows = Notification.objects.bulk_create([row(channel) for _ in range(count)])
    started = time.monotonic()
    queue.enqueue([n.pk for n in rows])
    done = receiver.wait_for([n.idempotency_key for n in rows], timeout=120)
    last = max(receiver.received.get(n.idempotency_key, 0.0) for n in rows)
    return count / (last - started), done


def offered(channel: Channel, receiver: Receiver, rate: float) -> tuple[list[float], int, float]:
    committed: dict[str, float] = {}

    def handed_over(notification: Notification) -> None:
        """What the pipeline's on_commit does, timed at the moment the commit returned."""
        committed[notification.idempotency_key] = time.monotonic()
        queue.enqueue([notification.pk])

    total = int(rate * SECONDS)
    start = time.monotonic()
    for i in range(total):
        pause = start + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        with transaction.atomic():
            notification = row(channel)
            notification.save()
            transaction.on_commit(functools.partial(handed_over, notification))
    achieved = total / (time.monotonic() - start)
    receiver.wait_for(list(committed), timeout=60)
    latencies = [
        (receiver.received[key] - at) * 1000
        for key, at in committed.items()
        if key in receiver.received
    ]
    return latencies, total - len(latencies), achieved


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    receiver = Receiver()
    owner, channel = common.webhook_channel("bench-notify", receiver.url)
    workers = common.start_worker(
        common.LOG_DIR / "bench-notify-worker.log",
        hostname=f"{QUEUE}@%h",
        pool=POOL,
        concurrency=CONCURRENCY,
    )
    try:
        rate, complete = burst(channel, receiver, 50)  # warm-up: workers up, connections open
        if not complete:
            raise SystemExit("workers did not deliver the warm-up rows; see .local/log")
        rate, complete = burst(channel, receiver, BURST)
        print(f"throughput: {BURST} rows at once -> {rate:.0f} deliveries/s", end="")
        print("" if complete else " (INCOMPLETE)")
        for rate in RATES:
            latencies, missing, achieved = offered(channel, receiver, rate)
            print(
                f"latency commit->receipt at {achieved:.0f}/s offered for {SECONDS:.0f}s "
                f"({len(latencies)} rows): p50 {percentile(latencies, 0.50):.0f} ms, "
                f"p90 {percentile(latencies, 0.90):.0f} ms, "
                f"p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms; "
                f"missing {missing}"
            )
            time.sleep(2)  # let the queue drain before the next rate
        sent = Notification.objects.filter(channel=channel, status="sent").count()
        total = Notification.objects.filter(channel=channel).count()
        print(f"rows sent {sent}/{total}; duplicate receipts {receiver.duplicates}")
        print(f"workers: --pool {POOL} --concurrency {CONCURRENCY}; cores: {os.cpu_count()}")
    finally:
        common.stop([workers])
        receiver.server.shutdown()
        owner.delete()


if __name__ == "__main__":
    main()
