"""Where a steady polling tick's cost goes, per 1,000 evaluations: the flip workload's steady
state (bench_flip.py, path (a)) in this one process, without Celery, so that every part can be
told apart.

N monitors (``last`` over 2 s above 30, interval 1 s, one per device) read a customer InfluxDB
that gets one batch of N points a second (a thread; influxd's CPU includes writing them). Each
tick claims every due monitor (the dispatcher's statement) and evaluates the batches
(``pipeline.evaluate_batch``), as a dispatcher and a worker would. Printed per 1,000
evaluations, over TICKS steady ticks after WARMUP ticks: this process's CPU split into claim and
evaluation; the CPU of this connection's Postgres backend (``/proc/<pid>/stat``) and of
influxd; the wall time of each kind of SQL statement; each tick's rows loaded through the ORM
(the others were kept). With PROFILE=1 a cProfile of the evaluation part of the steady ticks
is printed too.

    .venv/bin/python bench/profile_polling.py [N]      (default 10000; TICKS=10, WARMUP=3)
"""

from __future__ import annotations

import cProfile
import os
import pstats
import re
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import common

common.setup_django(defaults={"SOURCES_ALLOW_PRIVATE_ADDRESSES": "true"})

from django.conf import settings
from django.db import connection
from django.utils import timezone

from monitors.evaluate import dispatch, pipeline
from monitors.influxdb import client as influx
from monitors.models import Monitor
from tests import customer_influx

DATABASE = "growalert_profile_polling"
TICKS = int(os.environ.get("TICKS", "10"))
WARMUP = int(os.environ.get("WARMUP", "3"))
CLK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


class StatementTimes:
    """Wall time of each kind of statement (its first words, numbers and lists folded)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.on = False

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if self.on:
                key = re.sub(r"\s+", " ", sql.strip())[:70]
                self.seconds[key] += time.perf_counter() - start
                self.calls[key] += 1


def write_tick(client: influx.InfluxClient, devices: int) -> None:
    ms = int(time.time() * 1000)
    client.write(
        (f"sensor_value,device=d{d} value=20.0 {ms}" for d in range(devices)), database=DATABASE
    )


class Writer(threading.Thread):
    """One batch of N points every second, as the flip workload's writer."""

    def __init__(self, devices: int) -> None:
        super().__init__(daemon=True)
        self.devices = devices
        self.stopping = threading.Event()

    def run(self) -> None:
        with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
            while not self.stopping.is_set():
                write_tick(client, self.devices)
                self.stopping.wait(1.0)


def main() -> None:
    devices = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
        client.query(f'DROP DATABASE "{DATABASE}"', database=DATABASE, method="POST")
        client.create_database(DATABASE)
        write_tick(client, devices)
    owner, source = common.customer_source("profile-polling", DATABASE)
    _, channel = common.webhook_channel("profile-polling", "http://127.0.0.1:9/")
    monitors = common.flip_monitors(owner, source, channel, devices, timedelta(seconds=1))
    common.spread_schedules(monitors, owner, source, timezone.now(), 0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    influxd = common.service_roots({})["influxd"]
    times = StatementTimes()
    profiler = cProfile.Profile() if os.environ.get("PROFILE") else None
    claim_cpu = evaluate_cpu = postgres_cpu = influx_cpu = 0.0
    evaluations = 0
    loaded = [0]
    load_rows = pipeline._load_rows

    def counting(ids: list[int]) -> list[Monitor]:
        loaded[0] += len(ids)
        return load_rows(ids)

    pipeline._load_rows = counting
    writer = Writer(devices)
    writer.start()
    time.sleep(1.5)
    with connection.execute_wrapper(times):
        for tick in range(WARMUP + TICKS):
            started = time.monotonic()
            steady = tick >= WARMUP
            times.on = steady
            pg0, in0 = cpu_of(backend), common.cpu_by_tree({"i": influxd})["i"]
            t0 = time.thread_time()
            batches = dispatch.claim_batches(
                now=timezone.now(),
                size=settings.EVALUATION_BATCH_SIZE,
                spread=settings.EVALUATION_SPREAD,
            )
            t1 = time.thread_time()
            if profiler and steady:
                profiler.enable()
            done = 0
            for batch in batches:
                done += pipeline.evaluate_batch([(c.monitor_id, c.due_at) for c in batch]).applied
            if profiler and steady:
                profiler.disable()
            t2 = time.thread_time()
            print(f"  tick {tick}: {done:,} applied, {loaded[0]:,} loaded through the ORM")
            loaded[0] = 0
            if steady:
                claim_cpu += t1 - t0
                evaluate_cpu += t2 - t1
                postgres_cpu += cpu_of(backend) - pg0
                influx_cpu += common.cpu_by_tree({"i": influxd})["i"] - in0
                evaluations += done
            # the next tick: every monitor is due again one interval later
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    writer.stopping.set()
    writer.join()
    customer_influx.stop()
    Monitor.objects.filter(owner=owner).delete()  # no dispatcher on this database claims them
    per = 1_000_000 / max(evaluations, 1)  # seconds -> ms per 1,000
    print(f"profile_polling: N={devices:,}, {TICKS} steady ticks, {evaluations:,} evaluations")
    print(f"  claim (this process)      {claim_cpu * per:6.1f} ms per 1,000")
    print(f"  evaluation (this process) {evaluate_cpu * per:6.1f} ms per 1,000")
    print(f"  postgres (this backend)   {postgres_cpu * per:6.1f} ms per 1,000")
    print(f"  influxd                   {influx_cpu * per:6.1f} ms per 1,000")
    print("  SQL wall time by statement, ms per 1,000 evaluations:")
    for key, seconds in sorted(times.seconds.items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {seconds * per:6.1f}  x{times.calls[key] // TICKS:<4} per tick  {key}")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
