"""Fleet monitors (issue 17): one fleet monitor over N series against N single-series monitors
on the same data, in one run; then a storm.

Data: N devices (``gro01,device=dev-<d> temperature=20``) on the customers' test InfluxDB,
one point a minute for the last 3 minutes (``last`` over 10 min: every series has a value for
the whole run). Both sides evaluate the same rule, ``last(temperature)`` above 30, interval
10 s, through the production code: the dispatcher's claim, per-source batches of
EVALUATION_BATCH_SIZE, ``pipeline.evaluate_batch`` in WORKERS (2) worker processes (spawned,
as ``celery worker --concurrency 2`` would run them; the Celery hop itself is left out, as in
bench_pipeline). Each side runs ROUNDS ticks after a warm-up tick (which writes the first
states: the fleet's N series rows are inserted then, timed apart as "join"); the fleet side
also runs 21 more ticks first: until a new series' flap history is full its state changes
every tick (so every row is written), as a new monitor's does; then it is steady.

Per side: series-evaluations per second (wall time from the claim to the last commit) and
whole-system CPU per 1,000 series-evaluations: utime + stime of the process trees of this
checkout's Postgres, Redis and both influxd, and of this bench process with its worker
processes (the dispatcher and the workers), counted from /proc (``common.cpu_by_tree``).

Storm: the fleet monitor (one webhook channel to a loopback receiver), settled as above, then
STORM (1,000) of the N devices jump to 41 in one tick: time from the tick's claim to every
outbox row committed (evaluate_batch returns after its commit), with the default storm
grouping (one row per channel) and with grouping off (storm_threshold 1000: one row per
series per channel), and the time until the receiver has them (delivered in this process, one
send per row).

The storm's CPU (the same process trees, from the tick's claim to its commit) is printed
beside its wall time: on this shared machine the wall time mostly says how busy the cores were.

    .venv/bin/python bench/bench_fleet.py [N]          (default 10000)
    BENCH_STORM_ONLY=1 .venv/bin/python bench/bench_fleet.py    (the storms alone)
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from typing import Any

import common  # bench/common.py: this directory is first on sys.path

common.setup_django(
    env={"SOURCES_ALLOW_PRIVATE_ADDRESSES": "true", "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true"}
)

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from monitors.evaluate import dispatch, pipeline
from monitors.influxdb import client as influx
from monitors.models import Monitor, Notification, SeriesState
from monitors.notify import delivery
from tests import customer_influx

DATABASE = "growalert_bench_fleet"
USER = "bench-fleet"
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
STORM = int(os.environ.get("BENCH_STORM", "1000"))
STORM_ONLY = os.environ.get("BENCH_STORM_ONLY") == "1"  # skip the fleet-vs-singles comparison
FLAP_WINDOW = 21  # alerts_core.Policy.flap_window: a new series' state changes until it fills
RULE = {
    "measurement": "gro01",
    "field": "temperature",
    "aggregation": "last",
    "window": timedelta(minutes=10),
    "comparator": "above",
    "critical": 30.0,
    "interval": timedelta(seconds=10),
    "flap_detection": True,
}


def others() -> tuple[int, ...]:
    """Owners other than the bench's: their monitors (the demo's) are left unclaimed."""
    return tuple(get_user_model().objects.exclude(username=USER).values_list("pk", flat=True))


def make_due(ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE monitors_schedule SET next_due_at = now() - interval '1 second' "
            "WHERE monitor_id = ANY(%s)",
            [ids],
        )


def _warm() -> None:
    """A worker that has been up a while has its URLconf loaded (the first notification's link
    imports every app's URLs: ~0.5 s once per process, not part of any tick)."""
    from django.urls import reverse

    reverse("pages:monitor", args=[1])


def _evaluate(items: list[tuple[int, object]]) -> tuple[int, int, int]:
    result = pipeline.evaluate_batch(items)  # type: ignore[arg-type]
    return result.applied, result.series, len(result.notifications)


def tick(ids: list[int], pool: ProcessPoolExecutor) -> tuple[float, int, int, int]:
    """One claim of ``ids`` (made due), batches evaluated by the workers: (seconds, monitors
    applied, fleet series evaluated, outbox rows)."""
    make_due(ids)
    started = time.perf_counter()
    claimed = dispatch.claim_due(now=timezone.now(), excluded_owner_ids=others())
    batches = dispatch.batches(
        claimed, size=settings.EVALUATION_BATCH_SIZE, spread=settings.EVALUATION_SPREAD
    )
    jobs = [[(c.monitor_id, c.due_at) for c in batch] for batch in batches]
    done = list(pool.map(_evaluate, jobs))
    seconds = time.perf_counter() - started
    return seconds, sum(d[0] for d in done), sum(d[1] for d in done), sum(d[2] for d in done)


def roots(pool_owner: int) -> dict[str, list[int]]:
    return common.service_roots({"bench (dispatcher + workers)": [pool_owner]})


def measure(name: str, ids: list[int], pool: ProcessPoolExecutor, per_tick: int) -> float:
    """ROUNDS ticks: series-evaluations/s and CPU per 1,000, by process group."""
    trees = roots(os.getpid())
    cpu0 = common.cpu_by_tree(trees)
    wall = 0.0
    evaluations = 0
    for _ in range(ROUNDS):
        seconds, applied, series, _ = tick(ids, pool)
        wall += seconds
        evaluations += series or applied
    cpu1 = common.cpu_by_tree(trees)
    split = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
    total = sum(split.values())
    assert evaluations == per_tick * ROUNDS, (evaluations, per_tick * ROUNDS)
    print(
        f"{name}: {evaluations:,} series-evaluations in {ROUNDS} ticks, "
        f"{evaluations / wall:,.0f}/s (mean tick {wall / ROUNDS * 1000:.0f} ms); "
        f"CPU {total / evaluations * 1e6:.1f} ms per 1,000 ("
        + ", ".join(f"{k} {v / evaluations * 1e6:.1f}" for k, v in split.items())
        + f"); load {os.getloadavg()[0]:.2f}"
    )
    return total / evaluations


class Receiver(common.ArrivalReceiver):
    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def close(self) -> None:
        self.server.shutdown()


def drop() -> None:
    with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
        client.query(f"DROP DATABASE {DATABASE}", database=DATABASE, method="POST")


def seed(devices: int) -> None:
    common.seed_devices(DATABASE, devices, lambda d: 20.0)


def storm(
    source: Any,
    owner: Any,
    channel: Any,
    devices: int,
    pool: ProcessPoolExecutor,
    receiver: Receiver,
    threshold: int | None,
) -> None:
    """STORM of ``devices`` series jump to 41 in one tick of a fleet monitor."""
    Monitor.objects.filter(owner=owner).delete()
    drop()
    seed(devices)
    before = receiver.count()
    fleet = Monitor.objects.create(
        owner=owner, source=source, name="fleet storm", group_by=["device"],
        storm_threshold=threshold, **RULE,
    )  # fmt: skip
    fleet.channels.set([channel])
    for _ in range(1 + FLAP_WINDOW):  # the series join, all OK, and settle
        tick([fleet.pk], pool)
    now_ms = int(time.time() * 1000)
    with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
        hot = [
            influx.line("gro01", {"temperature": 41.0}, tags={"device": f"dev-{d}"},
                        timestamp_ms=now_ms)
            for d in range(STORM)
        ]  # fmt: skip
        client.write(hot, database=DATABASE)
    trees = roots(os.getpid())
    cpu0 = common.cpu_by_tree(trees)
    seconds, _, series, rows = tick([fleet.pk], pool)
    cpu1 = common.cpu_by_tree(trees)
    cpu = {k: (cpu1[k] - cpu0.get(k, 0.0)) * 1000 for k in cpu1}
    incidents = fleet.incidents.filter(resolved_at=None).count()
    ids = list(Notification.objects.filter(monitor=fleet).values_list("pk", flat=True))
    started = time.perf_counter()
    for pk in ids:
        delivery.deliver(str(pk))
    sent = time.perf_counter() - started
    failed = Notification.objects.filter(monitor=fleet).exclude(status="sent")
    first = failed.first()
    if first is not None:
        print(f"  {failed.count()} not sent: {first.last_error!r}")
    label = "grouped (default)" if threshold is None else f"storm_threshold {threshold}"
    print(
        f"storm, {label}: {STORM:,} of {series:,} series fired in one tick: tick -> "
        f"{rows} outbox rows and {incidents:,} incidents committed in {seconds * 1000:.0f} ms "
        f"(CPU {sum(cpu.values()):.0f} ms: "
        + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items())
        + f"); sent to the receiver in {sent * 1000:.0f} ms more "
        f"({receiver.count() - before} received); "
        f"load {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    devices = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(f"{devices:,} series; {WORKERS} worker processes; {ROUNDS} ticks per side; "
          f"load before {os.getloadavg()}")  # fmt: skip
    owner, source = common.customer_source(USER, DATABASE)
    receiver = Receiver()
    _, channel = common.webhook_channel(USER, receiver.url)
    seed(devices)
    connection.close()
    pool = ProcessPoolExecutor(
        WORKERS, mp_context=multiprocessing.get_context("spawn"), initializer=_warm
    )
    try:
        if STORM_ONLY:
            for threshold in (None, 1000):
                storm(source, owner, channel, devices, pool, receiver, threshold)
            return
        singles = Monitor.objects.bulk_create(
            [
                Monitor(owner=owner, source=source, name=f"single {d}",
                        tags={"device": f"dev-{d}"}, **RULE)
                for d in range(devices)
            ],
            batch_size=5000,
        )  # fmt: skip
        ids = [m.pk for m in singles]
        tick(ids, pool)  # warm-up: first states written, connections open
        single_cpu = measure("single-series monitors", ids, pool, devices)
        Monitor.objects.filter(owner=owner).delete()

        fleet = Monitor.objects.create(
            owner=owner, source=source, name="fleet", group_by=["device"], **RULE
        )
        seconds, _, _, _ = tick([fleet.pk], pool)
        joined = SeriesState.objects.filter(monitor=fleet).count()
        print(f"fleet monitor, first tick ({joined:,} series join): {seconds * 1000:.0f} ms")
        for _ in range(FLAP_WINDOW):  # until every series' flap history is full (then steady)
            tick([fleet.pk], pool)
        fleet_cpu = measure("one fleet monitor", [fleet.pk], pool, devices)
        print(
            f"fleet / singles CPU per 1,000 series-evaluations: {fleet_cpu / single_cpu:.2f} "
            f"(target <= 0.33)"
        )
        storm(source, owner, channel, devices, pool, receiver, None)
        storm(source, owner, channel, devices, pool, receiver, 1000)
    finally:
        Monitor.objects.filter(owner=owner).delete()
        pool.shutdown()
        receiver.close()
        drop()
        customer_influx.stop()  # the customer influxd this run started (else it outlives us)


if __name__ == "__main__":
    main()
