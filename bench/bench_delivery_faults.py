"""Postgres restarts during bursts of notification deliveries: is anything sent twice after the
receiver acknowledged it, is anything lost?

BENCH_ROUNDS (10) times: BENCH_BURST (300) outbox rows are committed and enqueued; once a third
of them has arrived at the receiver, Postgres is restarted (``scripts/services.sh down postgres``
— a fast shutdown, which terminates every connection "due to administrator command" — then
``up postgres``) while sends are in flight. The bench then waits until every row is ``sent``.

Everything real: Postgres (the development database), Redis, a Celery worker (BENCH_POOL
prefork, BENCH_CONCURRENCY 4) on a private queue, signed webhooks over loopback to a receiver in
this process that answers 200 to every request and counts requests per idempotency key. This
process plays beat: it runs the sweeper every 5 s, as beat does. Printed: sends that arrived
again after an acknowledged 2xx (target 0), rows lost (must be 0), lost attempts logged, and
how long workers waited to record an outcome (from the worker log).

    .venv/bin/python bench/bench_delivery_faults.py
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

import common  # bench/common.py: this directory is first on sys.path

QUEUE = f"bench-faults-{os.getpid()}"
common.setup_django(env={"CELERY_QUEUE": QUEUE, "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true"})

from django.db import DatabaseError, connection

from monitors.models import Channel, DeliveryAttempt, Notification
from monitors.notify import queue, tasks

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "10"))
BURST = int(os.environ.get("BENCH_BURST", "300"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
POOL = os.environ.get("BENCH_POOL", "prefork")
WORKER_LOG = common.LOG_DIR / "bench-faults-worker.log"
ROOT = common.ROOT
PAYLOAD = common.PAYLOAD


class Receiver(common.LoopbackReceiver):
    """Answers 200 to everything and counts requests per idempotency key."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        super().__init__()

    def post(self, request: BaseHTTPRequestHandler, key: str) -> None:
        with self.lock:
            self.counts[key] += 1
        self.ok(request)

    def arrived(self, keys: list[str]) -> int:
        with self.lock:
            return sum(1 for key in keys if key in self.counts)


def services_sh(*args: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "services.sh"), *args], check=True, capture_output=True)


def restart_postgres() -> float:
    started = time.monotonic()
    services_sh("down", "postgres")
    services_sh("up", "postgres")
    return time.monotonic() - started


def database(query: Any, default: Any) -> Any:
    """Runs a read, riding out a restart (a broken connection is replaced next time)."""
    try:
        return query()
    except DatabaseError:
        connection.close()
        return default


def sweeper(stop: threading.Event) -> None:
    """What beat does: the sweeper every 5 s."""
    while not stop.wait(5):
        try:
            tasks.deliver_due_notifications()
        except DatabaseError:
            pass
        finally:
            connection.close()


def one_round(channel: Channel, receiver: Receiver) -> tuple[list[str], int, float, float]:
    rows = Notification.objects.bulk_create(
        [
            Notification(
                channel=channel,
                event=Notification.Event.FIRED,
                idempotency_key=f"faults:{uuid.uuid4().hex}",
                payload=PAYLOAD,
            )
            for _ in range(BURST)
        ]
    )
    keys = [row.idempotency_key for row in rows]
    queue.enqueue([row.pk for row in rows])
    while receiver.arrived(keys) < BURST // 3:
        time.sleep(0.002)
    arrived = receiver.arrived(keys)
    restart = restart_postgres()
    started = time.monotonic()
    ids = [row.pk for row in rows]
    while time.monotonic() < started + 180:
        sent = database(
            lambda: Notification.objects.filter(pk__in=ids, status="sent").count(), default=0
        )
        if sent == BURST and receiver.arrived(keys) == BURST:
            break
        time.sleep(0.5)
    return keys, arrived, restart, time.monotonic() - started


def worker_waits(what: str) -> list[float]:
    """Seconds workers waited for the database to record an outcome (``recording``) or to
    claim a row (``claiming``), from the worker log."""
    text = WORKER_LOG.read_text(errors="replace")
    pattern = rf"{what} notification \S+: done after \d+ tries, ([\d.]+) s"
    return [float(s) for s in re.findall(pattern, text)]


def main() -> None:
    receiver = Receiver()
    owner, channel = common.webhook_channel("bench-faults", receiver.url)
    worker = common.start_worker(
        WORKER_LOG, hostname=f"{QUEUE}@%h", pool=POOL, concurrency=CONCURRENCY
    )
    stop = threading.Event()
    threading.Thread(target=sweeper, args=(stop,), daemon=True).start()
    all_keys: list[str] = []
    try:
        for number in range(1, ROUNDS + 1):
            keys, arrived, restart, settle = one_round(channel, receiver)
            all_keys += keys
            twice = sum(1 for key in keys if receiver.counts[key] > 1)
            print(
                f"round {number}: Postgres restarted ({restart:.1f} s) when {arrived} of "
                f"{BURST} had arrived; all sent {settle:.1f} s later; keys twice {twice}",
                flush=True,
            )
        again = sum(1 for key in all_keys if receiver.counts[key] > 1)
        extra = sum(receiver.counts[key] - 1 for key in all_keys if receiver.counts[key] > 1)
        missing = sum(1 for key in all_keys if receiver.counts[key] == 0)
        unsent = Notification.objects.filter(channel=channel).exclude(status="sent").count()
        lost_attempts = DeliveryAttempt.objects.filter(
            notification__channel=channel, outcome="unknown"
        ).count()
        print(
            f"{ROUNDS} Postgres restarts during bursts of {BURST} sends: "
            f"{len(all_keys)} notifications; sent again after an acknowledged 2xx: {again} keys "
            f"({extra} extra requests); lost (never received or not marked sent): "
            f"{missing} / {unsent}; lost attempts logged: {lost_attempts}"
        )
        for what, meaning in (
            ("recording", "sends acknowledged 2xx whose outcome waited for the database"),
            ("claiming", "claims that waited for the database"),
        ):
            waits = worker_waits(what)
            if waits:
                print(f"{meaning}: {len(waits)}, waited up to {max(waits):.2f} s")
        print(f"worker: --pool {POOL} --concurrency {CONCURRENCY}; cores: {os.cpu_count()}")
    finally:
        stop.set()
        common.stop([worker], timeout=60)
        receiver.server.shutdown()
        database(lambda: owner.delete(), default=None)


if __name__ == "__main__":
    main()
