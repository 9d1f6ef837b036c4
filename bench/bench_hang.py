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
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = "--shared" in sys.argv
TAG = f"bench-hang-{os.getpid()}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "growalert.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("SOURCES_ALLOW_PRIVATE_ADDRESSES", "true")  # the customer influxd
os.environ["WEBHOOKS_ALLOW_PRIVATE_ADDRESSES"] = "true"  # the receiver is on loopback
if SHARED:
    os.environ["CELERY_QUEUE"] = TAG
else:
    os.environ["CELERY_EVALUATION_QUEUE"] = f"{TAG}-evaluation"
    os.environ["CELERY_DELIVERY_QUEUE"] = f"{TAG}-delivery"

import django

django.setup()

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Min
from django.utils import timezone

from billing.gating import comp
from growalert.celery import app
from monitors import influx
from monitors.models import Channel, Monitor, Notification, Schedule, Source
from tests import customer_influx

DATABASE = "growalert_bench_hang"
DEVICES = 1000
HOT_DEVICES = 20  # dev-0, dev-50, ...: their monitors notify the hanging receiver
HANG = float(os.environ.get("BENCH_HANG", "60"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "25"))
RECOVER = float(os.environ.get("BENCH_RECOVER", "120"))
CORES = os.cpu_count() or 2


class Receiver:
    """Hangs every request while ``hang`` is set (a request whose sender hung up ends); then
    answers 200 and records each idempotency key."""

    def __init__(self) -> None:
        self.hang = False
        self.received: dict[str, int] = {}
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                import select
                import socket

                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Growalert-Idempotency-Key", "")
                with receiver.lock:
                    receiver.requests += 1
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                try:
                    while receiver.hang:
                        readable, _, _ = select.select([self.connection], [], [], 0.1)
                        if readable and not self.connection.recv(1, socket.MSG_PEEK):
                            return  # the sender timed out
                    with receiver.lock:
                        receiver.received[key] = receiver.received.get(key, 0) + 1
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                finally:
                    with receiver.lock:
                        receiver.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def seed(count: int, url: str) -> tuple[Any, list[int], list[int]]:
    now_ms = int(time.time() * 1000)
    with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
        client.create_database(DATABASE)
        client.write(
            [
                influx.line(
                    "gro01",
                    {"temperature": 20.0},
                    tags={"device": f"dev-{d}"},
                    timestamp_ms=now_ms - s * 60_000,
                )
                for d in range(DEVICES)
                for s in range(3)
            ],
            database=DATABASE,
        )
    owner, _ = get_user_model().objects.get_or_create(username="bench-hang")
    comp(owner)
    Monitor.objects.filter(owner=owner).delete()
    Channel.objects.filter(owner=owner).delete()
    source, _ = Source.objects.update_or_create(
        owner=owner, name="bench", defaults={"url": customer_influx.url(), "database": DATABASE}
    )
    channel = Channel.objects.create(
        owner=owner, name="hanging", kind="webhook", config={"url": url}
    )
    monitors = Monitor.objects.bulk_create(
        [
            Monitor(
                owner=owner,
                source=source,
                name=f"hang {i}",
                measurement="gro01",
                field="temperature",
                tags={"device": f"dev-{i % DEVICES}"},
                aggregation="last",
                window=timedelta(minutes=10),
                comparator="above",
                critical=30.0,
                interval=timedelta(seconds=10),
            )
            for i in range(count)
        ],
        batch_size=5000,
    )
    hot = [m.pk for i, m in enumerate(monitors) if (i % DEVICES) % (DEVICES // HOT_DEVICES) == 0]
    Monitor.channels.through.objects.bulk_create(
        [Monitor.channels.through(monitor_id=pk, channel_id=channel.pk) for pk in hot]
    )
    start = timezone.now() + timedelta(seconds=3)
    Schedule.objects.bulk_create(  # due times spread evenly over the interval
        [
            Schedule(
                monitor=m,
                owner_id=owner.pk,
                source_id=source.pk,
                interval=m.interval,
                next_due_at=start + timedelta(seconds=10 * i / count),
            )
            for i, m in enumerate(monitors)
        ],
        batch_size=5000,
        update_conflicts=True,
        unique_fields=["monitor"],
        update_fields=["next_due_at"],
    )
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


def start(name: str, *args: str) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    log = open(ROOT / ".local" / "log" / f"bench-hang-{name}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "celery"), "-A", "growalert", *args],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )
    return process, log


def processes() -> list[tuple[subprocess.Popen[bytes], IO[bytes]]]:
    worker = ["worker", "--loglevel", "WARNING", "--without-mingle", "--without-gossip"]
    started = [
        start(
            "beat",
            "beat",
            "--loglevel",
            "WARNING",
            "--pidfile",
            str(ROOT / ".local" / "run" / f"{TAG}-beat.pid"),
        )
    ]
    if SHARED:
        started.append(
            start(
                "shared",
                *worker,
                "--pool",
                "prefork",
                "--concurrency",
                str(CORES),
                "--hostname",
                f"{TAG}@%h",
            )
        )
    else:
        started.append(
            start(
                "evaluation",
                *worker,
                "--queues",
                settings.CELERY_EVALUATION_QUEUE,
                "--pool",
                "prefork",
                "--concurrency",
                str(CORES),
                "--hostname",
                f"{TAG}-evaluation@%h",
            )
        )
        started.append(
            start(
                "delivery",
                *worker,
                "--queues",
                settings.CELERY_DELIVERY_QUEUE,
                "--pool",
                "threads",
                "--concurrency",
                "32",
                "--hostname",
                f"{TAG}-delivery@%h",
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
        for process, _log in started:
            process.terminate()
        for process, log in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
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
