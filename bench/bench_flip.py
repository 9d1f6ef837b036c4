"""The flip workload of issue 18, path (a): data written straight to InfluxDB, monitors polling.

N series ``sensor_value,device=dI value=20`` are written every second (one line-protocol batch) to
the customers' test InfluxDB; one monitor per device (``last`` value over 2 s above 30, interval
1 s, one webhook channel to a loopback receiver in this process that timestamps arrivals). Real
Celery processes do the work, as ``scripts/run_all.sh`` starts them: an evaluation worker
(prefork, BENCH_EVAL_PROCESSES) and a delivery worker (threads, BENCH_DELIVERY_THREADS) on
private queues. Beat's part runs in a thread of this process: the dispatcher task's body every
second (enqueueing evaluations through the broker) and the sweeper every 5 s; its CPU is that
thread's own. The monitors are written directly (bulk), as a plan whose floor is 1 s would
allow them (billing/plans.py); the database's CHECK constraint is the absolute floor, 1 s.

1. Steady state: after a warm-up, CPU (utime + stime) of every process tree of this checkout's
   services (postgres, redis, both influxd) and of the Celery processes started here, over
   BENCH_WINDOW (60) s, per 1,000 evaluations, both per due evaluation (N x window / interval)
   and per evaluation done (the workers' ``growalert_evaluations`` counter, read from the
   Prometheus multiprocess files: a settled monitor's steady ticks write no row, so the rows'
   ``evaluated_due_at`` no longer counts them; its advance is printed beside it).
2. Rounds: BENCH_ROUNDS (10) times, K (100) fresh devices flip to 35 at a random instant (the
   writer sends it with its next batch), each device's ``fired`` arrival is recorded; hold 3 s,
   flip back, record ``resolved``. Latency = arrival - flip instant; p50/p99/max, lost and
   duplicated (a key received twice); and the delivery part alone: each outbox row's
   ``created_at`` (written in the evaluation's transaction) to its arrival; and the spread of
   one round's arrivals (first to last: how together a burst leaves). Before it, the two
   hops of the wait: flip -> the writer's batch carrying it answered (the wait for the next
   batch, then its write), and that answer -> the monitor's outbox row (the wait for the
   monitor's next evaluation and the evaluation itself); and how long a batch's write took.

The receiver allows BENCH_RECEIVER_CONCURRENCY (64) sends at once (NOTIFY_RECEIVER_CONCURRENCY;
the default 4 is meant for one customer's receiver, not a bench's single sink of every alert).

    .venv/bin/python bench/bench_flip.py [N]
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from datetime import timedelta

import common  # bench/common.py: this directory is first on sys.path

PID = os.getpid()
os.environ["PYTHONPATH"] = str(common.ROOT)  # the Celery processes import this checkout
common.setup_django(
    defaults={"SOURCES_ALLOW_PRIVATE_ADDRESSES": "true"},
    env={
        "CELERY_EVALUATION_QUEUE": f"bench-flip-eval-{PID}",
        "CELERY_DELIVERY_QUEUE": f"bench-flip-delivery-{PID}",
        "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
        "NOTIFY_RECEIVER_CONCURRENCY": os.environ.get("BENCH_RECEIVER_CONCURRENCY", "64"),
    },
)

from django.db import close_old_connections, connection

from monitors import tasks
from monitors.influxdb import client as influx
from monitors.models import Monitor, Notification
from monitors.notify import tasks as notify_tasks
from tests import customer_influx

DATABASE = "growalert_bench_flip"
K = int(os.environ.get("BENCH_K", "100"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "10"))
WINDOW = float(os.environ.get("BENCH_WINDOW", "60"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "15"))
HOLD = 3.0
EVAL_PROCESSES = int(os.environ.get("BENCH_EVAL_PROCESSES", str(os.cpu_count() or 2)))
DELIVERY_THREADS = int(os.environ.get("BENCH_DELIVERY_THREADS", "32"))


class Writer(threading.Thread):
    """One batch of N points every second, on the second; ``flipped`` devices report 35."""

    def __init__(self, devices: int) -> None:
        super().__init__(daemon=True)
        self.devices = devices
        self.flipped: set[int] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.late = 0
        self.batches: list[tuple[float, float]] = []  # (values read, write answered), epoch s

    def run(self) -> None:
        with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
            tick = time.time()
            while not self.stopping.is_set():
                with self.lock:
                    flipped = set(self.flipped)
                read_at = time.time()
                ms = int(read_at * 1000)
                client.write(
                    (
                        f"sensor_value,device=d{d} value={35.0 if d in flipped else 20.0} {ms}"
                        for d in range(self.devices)
                    ),
                    database=DATABASE,
                )
                self.batches.append((read_at, time.time()))
                tick += 1.0
                wait = tick - time.time()
                if wait < 0:
                    self.late += 1
                    tick = time.time()
                self.stopping.wait(max(0.0, wait))

    def landed(self, flipped_at: float) -> float | None:
        """When the first batch that carried a flip made at ``flipped_at`` was written."""
        return next((done for read, done in list(self.batches) if read >= flipped_at), None)

    def flip(self, devices: list[int], on: bool) -> None:
        with self.lock:
            self.flipped = common.flipped_after(self.flipped, devices, on)


def seed(devices: int, url: str) -> list[int]:

    owner, source = common.customer_source("bench-flip", DATABASE)
    _, channel = common.webhook_channel("bench-flip", url)
    channel.verified = True
    channel.save()
    monitors = common.flip_monitors(owner, source, channel, devices, timedelta(seconds=1))
    # the schedule rows (a signal may have made them): due now, all on the same second
    from django.utils import timezone

    common.spread_schedules(monitors, owner, source, timezone.now() + timedelta(seconds=2), 0)
    return [m.pk for m in monitors]


# ---------------------------------------------------------------- the dispatcher


class Beat(threading.Thread):
    """Beat's part: the dispatcher every second, on the second; the sweeper every 5 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        self.cpu = 0.0  # this thread's CPU seconds so far

    def run(self) -> None:
        tick = time.time()
        n = 0
        while not self.stopping.is_set():
            tasks.dispatch_due_monitors()
            if n % 5 == 0:
                notify_tasks.deliver_due_notifications()
            n += 1
            self.cpu = time.thread_time()
            tick += 1.0
            self.stopping.wait(max(0.0, tick - time.time()))
        close_old_connections()
        connection.close()


# ---------------------------------------------------------------- CPU of process trees


# One way to count them, shared with bench_fleet: common.cpu_by_tree / common.service_roots.
cpu_by_tree = common.cpu_by_tree
service_roots = common.service_roots


def evaluated_ticks(ids: list[int]) -> dict[int, float]:
    """Each monitor's last applied due time (epoch s); never-evaluated monitors are left out."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, extract(epoch FROM evaluated_due_at) FROM monitors_monitor"
            " WHERE id = ANY(%s) AND evaluated_due_at IS NOT NULL",
            [ids],
        )
        return {pk: float(at) for pk, at in cursor.fetchall()}


def evaluations_counted() -> float:
    """The evaluations every worker process has counted so far (growalert_evaluations, all
    outcomes), summed over this checkout's Prometheus multiprocess files."""
    from django.conf import settings
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)  # type: ignore[no-untyped-call]
    return sum(
        sample.value
        for metric in registry.collect()
        if metric.name == "growalert_evaluations"
        for sample in metric.samples
        if sample.name == "growalert_evaluations_total"
    )


def ticks_between(before: dict[int, float], after: dict[int, float]) -> float:
    """Evaluations applied between two readings (interval 1 s): the due times' advance, and
    one for a monitor first evaluated in between."""
    return sum(at - before[pk] if pk in before else 1.0 for pk, at in after.items())


# ---------------------------------------------------------------- the run


pct = common.pct


def main() -> None:
    devices = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    customer_influx.url()  # started on first use
    with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
        client.query(f'DROP DATABASE "{DATABASE}"', database=DATABASE, method="POST")
        client.create_database(DATABASE)
    receiver = common.FlipReceiver()
    writer = Writer(devices)
    writer.start()
    time.sleep(2.5)  # every series has data before the first evaluation
    ids = seed(devices, receiver.url)
    device_of = {pk: d for d, pk in enumerate(ids)}
    from django.conf import settings

    logs = common.LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    processes = {
        "evaluation worker": common.start_worker(
            logs / "bench-flip-eval.log",
            hostname=f"bench-flip-eval-{PID}@%h",
            pool="prefork",
            concurrency=EVAL_PROCESSES,
            queues=settings.CELERY_EVALUATION_QUEUE,
        ),
        "delivery worker": common.start_worker(
            logs / "bench-flip-delivery.log",
            hostname=f"bench-flip-delivery-{PID}@%h",
            pool="threads",
            concurrency=DELIVERY_THREADS,
            queues=settings.CELERY_DELIVERY_QUEUE,
        ),
    }
    beat = Beat()
    beat.start()
    try:
        roots = service_roots({name: [p.pid] for name, (p, _) in processes.items()})
        time.sleep(WARMUP)
        counted0 = evaluations_counted()
        ticks0, cpu0, t0 = evaluated_ticks(ids), cpu_by_tree(roots), time.time()
        cpu0["beat (dispatcher, sweeper)"] = beat.cpu
        time.sleep(WINDOW)
        ticks1, cpu1, t1 = evaluated_ticks(ids), cpu_by_tree(roots), time.time()
        cpu1["beat (dispatcher, sweeper)"] = beat.cpu
        counted1 = evaluations_counted()
        elapsed = t1 - t0
        done = counted1 - counted0
        rows_advanced = ticks_between(ticks0, ticks1)
        due = devices * elapsed  # interval 1 s
        split = {name: cpu1[name] - cpu0.get(name, 0.0) for name in cpu1}
        late_in_window = writer.late

        fired: list[float] = []
        resolved: list[float] = []
        spreads: dict[str, list[float]] = {"fired": [], "resolved": []}
        landings: dict[str, list[tuple[set[int], float, float]]] = {"fired": [], "resolved": []}
        lost = 0
        order = list(range(devices))
        random.Random(18).shuffle(order)
        for r in range(ROUNDS):
            chosen = order[(r * K) % devices : (r * K) % devices + K]
            monitors = {ids[d] for d in chosen}
            time.sleep(random.uniform(0.0, 1.0))
            flipped_at = time.time()
            writer.flip(chosen, on=True)
            receiver.wait_for("fired", monitors, 20)
            time.sleep(HOLD)
            back_at = time.time()
            writer.flip(chosen, on=False)
            receiver.wait_for("resolved", monitors, 20)
            for kind, since, into in (
                ("fired", flipped_at, fired),
                ("resolved", back_at, resolved),
            ):
                arrived = receiver.arrivals(kind)
                landed = writer.landed(since)
                if landed is not None:
                    landings[kind].append((monitors, since, landed))
                lost += common.record_round(arrived, since, monitors, into, spreads[kind])
        time.sleep(2)  # a late duplicate would show up by now
        rows = list(
            Notification.objects.filter(monitor_id__in=ids).values_list(
                "idempotency_key", "created_at", "monitor_id", "event"
            )
        )
        written = {key: at for key, at, _, _ in rows}
        row_at = {(monitor, event): at.timestamp() for _, at, monitor, event in rows}
        hops: dict[str, dict[str, list[float]]] = {}
        for kind, rounds in landings.items():
            parts = hops[kind] = {"flip -> write landed": [], "write landed -> outbox row": []}
            for monitors, since, landed in rounds:
                parts["flip -> write landed"].append(landed - since)
                parts["write landed -> outbox row"] += [
                    row_at[m, kind] - landed for m in monitors if (m, kind) in row_at
                ]
        batch_took = [done - read for read, done in writer.batches]
        with receiver.lock:
            handed = [
                receiver.received[key] - at.timestamp()
                for key, at in written.items()
                if key in receiver.received
            ]
    finally:
        beat.stopping.set()
        beat.join()
        common.stop(processes.values())
        writer.stopping.set()
        writer.join()
        Monitor.objects.filter(pk__in=ids).delete()
        customer_influx.stop()
    del device_of

    print(
        f"bench_flip path (a): N={devices:,} devices, 1 s data and interval, K={K}, "
        f"{ROUNDS} rounds; evaluation worker prefork x{EVAL_PROCESSES}, delivery worker "
        f"threads x{DELIVERY_THREADS}, dispatcher thread"
    )
    common.print_flip_arrivals(fired, resolved)
    print(
        f"  outbox row written -> arrival: n={len(handed)}, p50 {pct(handed, 50) * 1000:.0f} ms, "
        f"p99 {pct(handed, 99) * 1000:.0f} ms, max {max(handed, default=0) * 1000:.0f} ms"
    )
    print(
        f"  writer: a batch of {devices:,} points answered after p50 "
        f"{pct(batch_took, 50) * 1000:.0f} ms, p99 {pct(batch_took, 99) * 1000:.0f} ms, max "
        f"{max(batch_took, default=0) * 1000:.0f} ms (its points' time is when it began)"
    )
    for kind, parts in hops.items():
        print(f"  {kind}:")
        for label, values in parts.items():
            print(
                f"    {label:28} n={len(values)}, p50 {pct(values, 50) * 1000:.0f} ms, "
                f"p99 {pct(values, 99) * 1000:.0f} ms, max {max(values, default=0) * 1000:.0f} ms"
            )
    common.print_round_spreads(spreads)
    print(f"  lost {lost}, duplicated {receiver.duplicates}")
    print(
        f"  steady window {elapsed:.0f} s: evaluations done {done:,.0f} of {due:,.0f} due "
        f"({done / elapsed:,.0f}/s); never evaluated before the window {devices - len(ticks0):,}; "
        f"writer late {late_in_window} times; rows' evaluated_due_at advanced by "
        f"{rows_advanced:,.0f} ticks"
    )
    common.print_cpu_split(split, done=done, due=due)


if __name__ == "__main__":
    main()
