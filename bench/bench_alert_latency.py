"""Alert latency: from a monitor's due time to its Notification row committed.

10,000 monitors on a 60 s interval, their due times spread over the minute; one in ten watches a
device whose value is above its threshold, so it fires on its first evaluation and writes an
outbox row. The dispatcher runs every second, as beat runs it, and hands each batch to WORKERS
evaluation processes (standing in for Celery workers, without the broker hop); it runs for
DURATION seconds. Printed: due → commit for every evaluation, and for the evaluations that wrote
notifications, p50/p99/max.

Delivery is not part of this figure (bench_notify.py measures commit → receipt); the outbox rows
are handed to a private Celery queue that is purged afterwards.

    .venv/bin/python bench/bench_alert_latency.py [monitors] [seconds]
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import timedelta

import common  # bench/common.py: this directory is first on sys.path

common.setup_django(
    defaults={
        # The bench's source is a customer's InfluxDB: the second influxd of
        # tests/customer_influx.py on loopback (the deployment's own InfluxDB is never a
        # customer source).
        "SOURCES_ALLOW_PRIVATE_ADDRESSES": "true",
        "CELERY_QUEUE": "bench-alert-latency",  # nothing consumes it: purged below
    }
)

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from growalert.celery import app
from monitors.evaluate import dispatch, pipeline
from monitors.models import Channel, Monitor
from tests import customer_influx

WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
DATABASE = "growalert_bench_latency"
DEVICES = 1000


def _evaluate(items: list[tuple[int, object]]) -> tuple[list[float], list[float]]:
    result = pipeline.evaluate_batch(items)  # type: ignore[arg-type]
    return result.latencies, result.alert_latencies


def seed(count: int) -> list[int]:
    common.seed_devices(DATABASE, DEVICES, lambda d: 40.0 if d % 10 == 0 else 20.0)
    owner, source = common.customer_source("bench-latency", DATABASE)
    channel, _ = Channel.objects.get_or_create(
        owner=owner, name="bench", kind="webhook", defaults={"config": {"url": "http://x.invalid"}}
    )
    monitors = common.firing_monitors(
        owner, source, count, name="latency", devices=DEVICES, interval=timedelta(seconds=60)
    )
    Monitor.channels.through.objects.bulk_create(
        [Monitor.channels.through(monitor_id=m.pk, channel_id=channel.pk) for m in monitors],
        batch_size=5000,
    )
    # due times spread evenly over the minute (the rows exist)
    common.spread_schedules(monitors, owner, source, timezone.now() + timedelta(seconds=2), 60)
    return [m.pk for m in monitors]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else 0.0


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 75.0
    ids = seed(count)
    others = tuple(
        get_user_model().objects.exclude(username="bench-latency").values_list("pk", flat=True)
    )
    pool = ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"))
    list(pool.map(_evaluate, [[]] * WORKERS))  # start the processes before the clock runs
    futures: list[Future[tuple[list[float], list[float]]]] = []
    began = time.monotonic()
    tick = began
    while time.monotonic() - began < seconds:  # the dispatcher, every second
        claimed = dispatch.claim_due(now=timezone.now(), excluded_owner_ids=others)
        for batch in dispatch.batches(
            claimed, size=settings.EVALUATION_BATCH_SIZE, spread=settings.EVALUATION_SPREAD
        ):
            futures.append(pool.submit(_evaluate, [(c.monitor_id, c.due_at) for c in batch]))
        tick += 1.0
        time.sleep(max(0.0, tick - time.monotonic()))
    all_latencies: list[float] = []
    alert_latencies: list[float] = []
    for future in futures:
        latencies, alerts = future.result()
        all_latencies += latencies
        alert_latencies += alerts
    pool.shutdown()
    app.control.purge()
    Monitor.objects.filter(pk__in=ids).delete()
    print(
        f"{count:,} monitors on a 60 s interval, dispatcher every 1 s, {WORKERS} worker "
        f"processes, {seconds:.0f} s"
    )
    for label, values in (
        ("every evaluation", all_latencies),
        ("wrote notifications", alert_latencies),
    ):
        p50, p99, worst = (pct(values, 50), pct(values, 99), max(values, default=0))
        print(
            f"due -> commit, {label}: {len(values):,} evaluations, p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms"
        )


if __name__ == "__main__":
    try:
        main()
    finally:
        customer_influx.stop()
