"""bench_fleet's storm tick in this process, with its parts timed and a cProfile of it.

The fleet monitor of bench_fleet (one webhook channel; N series, settled as there), then
STORM of them jump to 41 and one tick evaluates it here (``pipeline.evaluate_batch``, as a
worker would): this process's CPU for the tick (``time.process_time``), its wall time, and
the cumulative profile's top entries. A steady tick just before is measured the same way, so
the storm's own cost is the difference.

    BENCH_STORM_THRESHOLD=1000 .venv/bin/python bench/profile_storm.py [N]   (default 10000)
    (without BENCH_STORM_THRESHOLD: the default storm grouping, one row per channel)
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time

import bench_fleet  # sets Django up (bench/ is first on sys.path)
import common
from django.utils import timezone

from monitors.evaluate import pipeline
from monitors.influxdb import client as influx
from monitors.models import Monitor
from tests import customer_influx

TOP = int(os.environ.get("PROFILE_TOP", "30"))


def one_tick(pk: int) -> tuple[float, float, pipeline.BatchResult]:
    bench_fleet.make_due([pk])
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = pipeline.evaluate_batch([(pk, timezone.now())])
    return time.perf_counter() - wall0, time.process_time() - cpu0, result


def main() -> None:
    devices = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    bench_fleet._warm()  # the URLconf, as the bench's workers have it
    threshold = os.environ.get("BENCH_STORM_THRESHOLD")
    owner, source = common.customer_source(bench_fleet.USER, bench_fleet.DATABASE)
    _, channel = common.webhook_channel(bench_fleet.USER, "http://127.0.0.1:9/")
    Monitor.objects.filter(owner=owner).delete()
    bench_fleet.drop()
    bench_fleet.seed(devices)
    fleet = Monitor.objects.create(
        owner=owner, source=source, name="fleet storm profile", group_by=["device"],
        storm_threshold=int(threshold) if threshold else None, **bench_fleet.RULE,
    )  # fmt: skip
    fleet.channels.set([channel])
    try:
        bench_pipeline_ticks = 1 + bench_fleet.FLAP_WINDOW + 2
        for _ in range(bench_pipeline_ticks):  # join, settle, then steady
            one_tick(fleet.pk)
        wall, cpu, _ = one_tick(fleet.pk)
        print(
            f"steady tick: wall {wall * 1000:.0f} ms, this process's CPU {cpu * 1000:.0f} ms; "
            f"load {os.getloadavg()[0]:.2f}"
        )
        now_ms = int(time.time() * 1000)
        with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
            hot = [
                influx.line("gro01", {"temperature": 41.0}, tags={"device": f"dev-{d}"},
                            timestamp_ms=now_ms)
                for d in range(bench_fleet.STORM)
            ]  # fmt: skip
            client.write(hot, database=bench_fleet.DATABASE)
        profile = cProfile.Profile()
        profile.enable()
        wall, cpu, result = one_tick(fleet.pk)
        profile.disable()
        print(
            f"storm tick ({bench_fleet.STORM:,} of {result.series:,} fire, "
            f"{len(result.notifications)} outbox rows): wall {wall * 1000:.0f} ms, "
            f"this process's CPU {cpu * 1000:.0f} ms; load {os.getloadavg()[0]:.2f}"
        )
        pstats.Stats(profile).sort_stats("cumulative").print_stats(TOP)
        pstats.Stats(profile).sort_stats("tottime").print_stats(TOP)
    finally:
        Monitor.objects.filter(owner=owner).delete()
        bench_fleet.drop()
        customer_influx.stop()


if __name__ == "__main__":
    main()
