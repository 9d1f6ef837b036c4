"""A real-time soak: the whole pipeline running on 10,000 monitors, Postgres's size sampled.

Unlike ``bench_retention.py`` (a moved clock, tables only), everything here runs as in
production, for ``--minutes`` of wall-clock time: N monitors (``last`` over 2 min above 30, one
webhook channel each, interval ``--interval`` s, due times spread over it) read a customer
InfluxDB that gets every device's reading every 10 s; every minute ``--flip`` devices go above
the threshold for 3 minutes (each firing opens an incident and sends ``fired``, then
``resolved``, through a real delivery worker to a loopback receiver). Real Celery processes
evaluate and deliver (prefork evaluation worker, threads delivery worker, private queues); beat's
part runs in a thread: the dispatcher every second, the delivery sweeper every 5 s, the
retention task every ``--prune-every`` s (``monitors.tasks.prune_old_rows``' body). Retention
ages are short so that the steady state comes within the run: notifications
``--notification-minutes``, incidents ``--incident-minutes`` (RETENTION_*_DAYS).

Every ``--report-every`` s it prints the rows and ``pg_total_relation_size`` (table, indexes and
TOAST) of the monitors, their schedule rows, the outbox, the delivery attempts and the
incidents, and the database's size; at the end the change of each over the second half of the
run (flat: the rows written are the rows pruned, and autovacuum keeps up with the updates).
The five tables are compacted (``VACUUM FULL``) before the run, so that free space left by
earlier runs cannot hide growth; from then on autovacuum runs as configured by
``scripts/services.sh`` (nothing here vacuums).

It shares the database with whatever else runs on these services (a dispatcher claims every
due monitor): run it on services of its own, e.g. ports of its own in the environment
(``GROWALERT_PG_PORT=24432 GROWALERT_REDIS_PORT=24379 GROWALERT_INFLUX_PORT=24086
GROWALERT_INFLUX_RPC_PORT=24088``, ``scripts/services.sh up`` and ``manage.py migrate`` with
them).

    .venv/bin/python bench/soak.py [--monitors 10000] [--minutes 60] [--interval 60]
        [--flip 100] [--notification-minutes 15] [--incident-minutes 20]
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from datetime import timedelta
from pathlib import Path

import common  # bench/common.py: this directory is first on sys.path

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--monitors", type=int, default=10_000)
parser.add_argument("--minutes", type=float, default=60.0, help="wall-clock length of the soak")
parser.add_argument("--interval", type=int, default=60, help="monitor interval, seconds")
parser.add_argument("--flip", type=int, default=100, help="devices firing each minute")
parser.add_argument("--notification-minutes", type=float, default=15.0)
parser.add_argument("--incident-minutes", type=float, default=20.0)
parser.add_argument("--prune-every", type=float, default=300.0, help="seconds (beat: 300)")
parser.add_argument("--report-every", type=float, default=300.0, help="seconds")
args = parser.parse_args()

PID = os.getpid()
LOCAL = Path(os.environ.get("GROWALERT_LOCAL_DIR") or common.ROOT / ".local")
os.environ["PYTHONPATH"] = str(common.ROOT)  # the Celery processes import this checkout
common.setup_django(
    defaults={"SOURCES_ALLOW_PRIVATE_ADDRESSES": "true"},
    env={
        "CELERY_EVALUATION_QUEUE": f"bench-soak-eval-{PID}",
        "CELERY_DELIVERY_QUEUE": f"bench-soak-delivery-{PID}",
        "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
        "NOTIFY_RECEIVER_CONCURRENCY": "64",
        "RETENTION_NOTIFICATIONS_DAYS": str(args.notification_minutes / 1440),
        "RETENTION_INCIDENTS_DAYS": str(args.incident_minutes / 1440),
        # its processes' counters apart from the checkout's (a test reading them while a soak
        # ran beside it counted the soak's evaluations, 2026-12-04)
        "PROMETHEUS_MULTIPROC_DIR": str(LOCAL / "prometheus-soak"),
    },
)

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from monitors import tasks
from monitors.influxdb import client as influx
from monitors.models import Monitor
from monitors.notify import tasks as notify_tasks
from tests import customer_influx

DATABASE = "growalert_bench_soak"
HOLD = 180.0  # seconds a flipped device stays above the threshold
TABLES = (
    "monitors_monitor",
    "monitors_schedule",
    "monitors_notification",
    "monitors_deliveryattempt",
    "monitors_incident",
)


class Writer(threading.Thread):
    """Every device's reading every 10 s (one line-protocol batch); flipped devices read 35."""

    def __init__(self, devices: int) -> None:
        super().__init__(daemon=True)
        self.devices = devices
        self.flipped: dict[int, float] = {}  # device -> until (monotonic)
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self) -> None:
        with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
            while not self.stopping.is_set():
                now = time.monotonic()
                with self.lock:
                    hot = {d for d, until in self.flipped.items() if until > now}
                ms = int(time.time() * 1000)
                client.write(
                    (
                        f"sensor_value,device=d{d} value={35.0 if d in hot else 20.0} {ms}"
                        for d in range(self.devices)
                    ),
                    database=DATABASE,
                )
                self.stopping.wait(10.0)

    def flip(self, devices: list[int]) -> None:
        with self.lock:
            until = time.monotonic() + HOLD
            self.flipped.update(dict.fromkeys(devices, until))


class Beat(threading.Thread):
    """Beat's part: the dispatcher every second, the sweeper every 5 s, retention every
    ``--prune-every`` s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        self.pruned = 0
        self.failures = 0

    def run(self) -> None:
        tick = time.time()
        next_prune = tick + args.prune_every
        n = 0
        while not self.stopping.is_set():
            try:  # as beat does, a tick that fails (a server restarting) is not the last
                tasks.dispatch_due_monitors()
                if n % 5 == 0:
                    notify_tasks.deliver_due_notifications()
                if time.time() >= next_prune:
                    next_prune += args.prune_every
                    self.pruned += tasks.prune_old_rows()
            except Exception as exc:
                self.failures += 1
                print(f"  beat tick failed: {exc!r}", flush=True)
            n += 1
            tick += 1.0
            self.stopping.wait(max(0.0, tick - time.time()))
        close_old_connections()
        connection.close()


def sizes() -> dict[str, tuple[int, int]]:
    """Rows (estimated by Postgres's statistics, exact for the outbox's owner) and bytes of
    each table with its indexes and TOAST, and the database's bytes under "database"."""
    out: dict[str, tuple[int, int]] = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}"  # noqa: S608
            )
            rows, size = cursor.fetchone()
            out[table] = (rows, size)
        cursor.execute("SELECT pg_database_size(current_database())")
        out["database"] = (0, cursor.fetchone()[0])
    return out


def report(elapsed: float, now: dict[str, tuple[int, int]], received: int, pruned: int) -> None:
    cells = "  ".join(
        f"{table.removeprefix('monitors_')} {rows:,} rows {size / 2**20:.1f} MB"
        for table, (rows, size) in now.items()
        if table != "database"
    )
    print(
        f"  {elapsed / 60:5.1f} min: {cells}  database {now['database'][1] / 2**20:.1f} MB;"
        f" webhooks received {received:,}, rows pruned {pruned:,}",
        flush=True,
    )


def main() -> None:
    customer_influx.url()
    with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
        client.query(f'DROP DATABASE "{DATABASE}"', database=DATABASE, method="POST")
        client.create_database(DATABASE)
    receiver = common.ArrivalReceiver()
    writer = Writer(args.monitors)
    writer.start()
    time.sleep(2.0)
    owner, source = common.customer_source("bench-soak", DATABASE)
    _, channel = common.webhook_channel("bench-soak", receiver.url)
    channel.verified = True
    channel.save()
    monitors = common.flip_monitors(
        owner, source, channel, args.monitors, timedelta(seconds=args.interval)
    )
    Monitor.objects.filter(owner=owner).update(window=timedelta(minutes=2))
    common.spread_schedules(monitors, owner, source, timezone.now(), float(args.interval))
    logs = common.LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    processes = {
        "evaluation worker": common.start_worker(
            logs / "bench-soak-eval.log",
            hostname=f"bench-soak-eval-{PID}@%h",
            pool="prefork",
            concurrency=2,
            queues=settings.CELERY_EVALUATION_QUEUE,
        ),
        "delivery worker": common.start_worker(
            logs / "bench-soak-delivery.log",
            hostname=f"bench-soak-delivery-{PID}@%h",
            pool="threads",
            concurrency=16,
            queues=settings.CELERY_DELIVERY_QUEUE,
        ),
    }
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"VACUUM FULL {table}")
    beat = Beat()
    beat.start()
    print(
        f"soak: {args.monitors:,} monitors, interval {args.interval} s, {args.flip} devices "
        f"firing each minute for {HOLD / 60:.0f} min, retention: notifications "
        f"{args.notification_minutes:g} min, incidents {args.incident_minutes:g} min; "
        f"{args.minutes:g} min",
        flush=True,
    )
    order = list(range(args.monitors))
    random.Random(21).shuffle(order)
    samples: list[tuple[float, dict[str, tuple[int, int]]]] = []
    start = time.monotonic()
    next_flip = start + 60.0
    next_report = start
    flips = 0
    try:
        while (elapsed := time.monotonic() - start) < args.minutes * 60:
            if time.monotonic() >= next_report:
                now = sizes()
                samples.append((elapsed, now))
                with receiver.lock:
                    received = len(receiver.received)
                report(elapsed, now, received, beat.pruned)
                next_report += args.report_every
            if time.monotonic() >= next_flip:
                at = (flips * args.flip) % args.monitors
                writer.flip(order[at : at + args.flip])
                flips += 1
                next_flip += 60.0
            time.sleep(1.0)
        now = sizes()
        samples.append((time.monotonic() - start, now))
        with receiver.lock:
            received = len(receiver.received)
        report(samples[-1][0], now, received, beat.pruned)
    finally:
        beat.stopping.set()
        beat.join()
        common.stop(processes.values())
        writer.stopping.set()
        writer.join()
        customer_influx.stop()
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    first, last = half[0], half[-1]
    print(f"second half ({first[0] / 60:.0f} -> {last[0] / 60:.0f} min), change of rows and size:")
    for table in (*TABLES, "database"):
        (r0, s0), (r1, s1) = first[1][table], last[1][table]
        print(
            f"  {table.removeprefix('monitors_'):16} rows {r1 - r0:+,}  size "
            f"{(s1 - s0) / 2**20:+.1f} MB ({s0 / 2**20:.1f} -> {s1 / 2**20:.1f} MB)"
        )
    print(f"  webhooks received {received:,}, duplicated {receiver.duplicates}")


if __name__ == "__main__":
    main()
