"""A hanging webhook receiver must not delay evaluation: scheduler lag while it hangs.

MONITORS (10,000) monitors on a 10 s interval, their due times spread over the interval, on the
customers' test InfluxDB (tests/customer_influx.py). Real processes: Celery beat, an evaluation
worker (prefork, one process per core, evaluation queue only) and a delivery worker (threads
pool, 32 threads, delivery queue only), as `make run` starts them, on private queues. After a
warm-up, a loopback receiver starts hanging for HANG seconds (60; far beyond the 5 s send
timeout) and HOT (200) monitors that notify it start firing. Printed:

* scheduler lag during the hang (age of the oldest due monitor not yet claimed, sampled every
  0.25 s): p50/p99/max;
* monitors evaluated during the hang;
* the receiver's most concurrent requests, and how many of the notifications to it arrived
  after it recovered (within RECOVER seconds, default 120), with duplicates and what is left.

``--shared`` runs the old layout instead for comparison: one prefork worker (one process per
core) consuming one queue for evaluation and delivery.

    .venv/bin/python bench/bench_hang.py [monitors] [--shared]
"""

from __future__ import annotations

import os
import select
import socket
import sys
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import common  # bench/common.py: this directory is first on sys.path

SHARED = "--shared" in sys.argv
TAG = f"bench-hang-{os.getpid()}"
QUEUES = (
    {"CELERY_QUEUE": TAG}
    if SHARED
    else {
        "CELERY_EVALUATION_QUEUE": f"{TAG}-evaluation",
        "CELERY_DELIVERY_QUEUE": f"{TAG}-delivery",
    }
)
common.setup_django(
    defaults={"SOURCES_ALLOW_PRIVATE_ADDRESSES": "true"},  # the customer influxd
    env={"WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true", **QUEUES},  # the receiver is on loopback
)

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from growalert.celery import app
from monitors.influxdb import client as influx
from monitors.models import Channel, Monitor, Notification, Schedule
from tests import customer_influx

DATABASE = "growalert_bench_hang"
DEVICES = 1000
HOT_DEVICES = 20  # dev-0, dev-50, ...: their monitors notify the hanging receiver
HANG = float(os.environ.get("BENCH_HANG", "60"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "25"))
RECOVER = float(os.environ.get("BENCH_RECOVER", "120"))
CORES = os.cpu_count() or 2


class Receiver(common.LoopbackReceiver):
    """Hangs every request while ``hang`` is set (a request whose sender hung up ends); then
    answers 200 and records each idempotency key."""

    def __init__(self) -> None:
        self.hang = False
        self.received: dict[str, int] = {}
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        super().__init__()

    def post(self, request: BaseHTTPRequestHandler, key: str) -> None:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            while self.hang:
                readable, _, _ = select.select([request.connection], [], [], 0.1)
                if readable and not request.connection.recv(1, socket.MSG_PEEK):
                    return  # the sender timed out
            with self.lock:
                self.received[key] = self.received.get(key, 0) + 1
            self.ok(request)
        finally:
            with self.lock:
                self.in_flight -= 1


def seed(count: int, url: str) -> tuple[Any, list[int], list[int]]:
    common.seed_devices(DATABASE, DEVICES, lambda d: 20.0)
    owner, source = common.customer_source("bench-hang", DATABASE)
    Channel.objects.filter(owner=owner).delete()
    channel = Channel.objects.create(
        owner=owner, name="hanging", kind="webhook", config={"url": url}
    )
    monitors = common.firing_monitors(
        owner, source, count, name="hang", devices=DEVICES, interval=timedelta(seconds=10)
    )
    hot = [m.pk for i, m in enumerate(monitors) if (i % DEVICES) % (DEVICES // HOT_DEVICES) == 0]
    Monitor.channels.through.objects.bulk_create(
        [Monitor.channels.through(monitor_id=pk, channel_id=channel.pk) for pk in hot]
    )
    # due times spread evenly over the interval
    common.spread_schedules(monitors, owner, source, timezone.now() + timedelta(seconds=3), 10)
    return owner, [m.pk for m in monitors], hot


def heat() -> None:
    """The hot devices go above the threshold: their monitors fire and notify."""
    now_ms = int(time.time() * 1000)
    with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
        client.write(
            [
                influx.line(
                    "gro01", {"temperature": 40.0}, tags={"device": f"dev-{d}"}, timestamp_ms=now_ms
                )
                for d in range(0, DEVICES, DEVICES // HOT_DEVICES)
            ],
            database=DATABASE,
        )


def processes() -> list[common.Started]:
    def log(name: str) -> Path:
        return common.LOG_DIR / f"bench-hang-{name}.log"

    started = [
        common.start_celery(
            log("beat"),
            "beat",
            "--loglevel",
            "WARNING",
            "--pidfile",
            str(common.ROOT / ".local" / "run" / f"{TAG}-beat.pid"),
        )
    ]
    if SHARED:
        started.append(
            common.start_worker(
                log("shared"), hostname=f"{TAG}@%h", pool="prefork", concurrency=CORES
            )
        )
    else:
        started.append(
            common.start_worker(
                log("evaluation"),
                queues=settings.CELERY_EVALUATION_QUEUE,
                pool="prefork",
                concurrency=CORES,
                hostname=f"{TAG}-evaluation@%h",
            )
        )
        started.append(
            common.start_worker(
                log("delivery"),
                queues=settings.CELERY_DELIVERY_QUEUE,
                pool="threads",
                concurrency=32,
                hostname=f"{TAG}-delivery@%h",
            )
        )
    return started


def lag(owner_id: int) -> float:
    now = timezone.now()
    oldest = Schedule.objects.filter(owner_id=owner_id, next_due_at__lte=now).aggregate(
        oldest=Min("next_due_at")
    )["oldest"]
    return (now - oldest).total_seconds() if oldest else 0.0


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else 0.0


def main() -> None:
    count = int(next((a for a in sys.argv[1:] if a.isdigit()), "10000"))
    receiver = Receiver()
    owner, ids, hot = seed(count, receiver.url)
    started = processes()
    try:
        warm: list[float] = []
        until = time.monotonic() + WARMUP
        while time.monotonic() < until:
            warm.append(lag(owner.pk))
            time.sleep(0.25)
        receiver.hang = True
        hang_started = timezone.now()
        heat()
        during: list[float] = []
        until = time.monotonic() + HANG
        while time.monotonic() < until:
            during.append(lag(owner.pk))
            time.sleep(0.25)
        # a settled monitor's row is refreshed every EVALUATION_ROW_REFRESH_SECONDS (30): a
        # hang of 30 s or more sees every monitor that kept being evaluated write at least once
        evaluated = Monitor.objects.filter(pk__in=ids, last_evaluated_at__gte=hang_started).count()
        requests_while_hanging = receiver.requests
        receiver.hang = False
        recovered = time.monotonic()
        notifications = Notification.objects.filter(channel__owner=owner)
        total = notifications.count()
        until = recovered + RECOVER
        while time.monotonic() < until:
            if len(receiver.received) >= total > 0:
                break
            time.sleep(0.5)
        all_in = time.monotonic() - recovered
        statuses: dict[str, int] = {}
        for status in notifications.values_list("status", flat=True):
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        common.stop(started)
        app.control.purge()
        Monitor.objects.filter(pk__in=ids).delete()
        Channel.objects.filter(owner=owner).delete()

    layout = (
        f"one shared prefork worker ({CORES} processes)"
        if SHARED
        else f"evaluation worker (prefork, {CORES} processes) + delivery worker (threads, 32)"
    )
    print(f"{count:,} monitors on a 10 s interval; beat + {layout}; receiver hangs {HANG:.0f} s")
    print(
        f"scheduler lag before the hang: p50 {pct(warm, 50):.2f} s, p99 {pct(warm, 99):.2f} s, "
        f"max {max(warm, default=0):.2f} s ({len(warm)} samples)"
    )
    print(
        f"scheduler lag during the hang: p50 {pct(during, 50):.2f} s, "
        f"p99 {pct(during, 99):.2f} s, max {max(during, default=0):.2f} s ({len(during)} samples)"
    )
    print(f"monitors evaluated during the hang: {evaluated:,} of {count:,}")
    print(
        f"hanging receiver: {len(hot)} monitors notify it, {total} notifications; "
        f"{requests_while_hanging} requests reached it while hanging, "
        f"at most {receiver.max_in_flight} at once"
    )
    delivered = len(receiver.received)
    duplicates = sum(n - 1 for n in receiver.received.values())
    print(
        f"after it recovered: {delivered} of {total} delivered within {all_in:.0f} s, "
        f"{duplicates} duplicates; rows by status: {statuses}"
    )


if __name__ == "__main__":
    try:
        main()
    finally:
        customer_influx.stop()
