"""End-to-end evaluations per second: claim → InfluxDB → transition → commit.

Batched pipeline (what production runs: one claim, per-source batches of EVALUATION_BATCH_SIZE,
one multi-statement InfluxDB request and one transaction per batch) against a baseline of one
claim, one InfluxDB query and one transaction per monitor, on the same monitors, in one run.
Also times the dispatcher's claim of 10,000 due monitors.

Both modes run without the Celery hop, in WORKERS processes (default 2, one per core, as
`celery worker --concurrency 2` would), with Postgres, Redis and InfluxDB on this machine.
Uses the development database and a dedicated InfluxDB database; its monitors belong to a
"bench" user and are deleted afterwards.

    .venv/bin/python bench/bench_pipeline.py [sizes...]     (default: 1000 10000 50000)
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta

import common  # bench/common.py: this directory is first on sys.path

common.setup_django(
    defaults={
        # The bench's source is a customer's InfluxDB: the second influxd of
        # tests/customer_influx.py on loopback (the deployment's own InfluxDB is never a
        # customer source).
        "SOURCES_ALLOW_PRIVATE_ADDRESSES": "true",
    }
)

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from billing.gating import comp
from monitors.evaluate import dispatch, pipeline
from monitors.influxdb import client as influx
from monitors.models import Monitor, Schedule, Source
from tests import customer_influx

WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
DEVICES = 1000
DATABASE = "growalert_bench"
BASELINE_SAMPLE = 1000  # the baseline is slow: it is timed on this many monitors


def seed_influx() -> None:
    now_ms = int(time.time() * 1000)
    with influx.InfluxClient(customer_influx.url(), timeout=30, trusted=True) as client:
        client.create_database(DATABASE)
        lines = [
            influx.line(
                "gro01",
                {"temperature": 20.0 + (d % 30) + (s % 3)},
                tags={"device": f"dev-{d}"},
                timestamp_ms=now_ms - s * 10_000,
            )
            for d in range(DEVICES)
            for s in range(6)
        ]
        client.write(lines, database=DATABASE)


def seed_steady_influx(minutes: int) -> None:
    """Like ``seed_influx``, but every device's value is constant and its points (10 s apart)
    run from a minute ago to ``minutes`` ahead: a monitor's 1-minute window (``time > now() -
    1m``, no upper bound) holds the same mean at every tick for that long, so each tick does
    the same work (no transitions, no notifications once the first tick has settled them).
    With ``seed_influx`` the points age out of the window after a minute and every monitor
    goes through "no data" during the run, which lands on whichever half of a comparison runs
    then."""
    now_ms = int(time.time() * 1000)
    with influx.InfluxClient(customer_influx.url(), timeout=60, trusted=True) as client:
        client.query(f"DROP DATABASE {DATABASE}", database=DATABASE, method="POST")
        client.create_database(DATABASE)
        for start in range(-6, minutes * 6, 60):
            lines = [
                influx.line(
                    "gro01",
                    {"temperature": 20.0 + (d % 30)},
                    tags={"device": f"dev-{d}"},
                    timestamp_ms=now_ms + s * 10_000,
                )
                for d in range(DEVICES)
                for s in range(start, min(start + 60, minutes * 6))
            ]
            client.write(lines, database=DATABASE)


def seed_monitors(count: int) -> tuple[Source, list[int]]:
    User = get_user_model()
    owner, _ = User.objects.get_or_create(username="bench", defaults={"email": "b@x.local"})
    comp(owner)
    Monitor.objects.filter(owner=owner).delete()
    source, _ = Source.objects.update_or_create(
        owner=owner, name="bench", defaults={"url": customer_influx.url(), "database": DATABASE}
    )
    monitors = [
        common.monitor(
            owner,
            source,
            f"bench {i}",
            f"dev-{i % DEVICES}",
            aggregation="mean",
            window=timedelta(minutes=1),
            comparator="above",
            critical=30.0 + (i % 17),
            interval=timedelta(minutes=1),
            flap_detection=True,
        )
        for i in range(count)
    ]
    created = Monitor.objects.bulk_create(monitors, batch_size=5000)
    Schedule.objects.bulk_create(  # the trigger gave them rows due now: not yet
        [
            Schedule(
                monitor=m,
                owner_id=owner.pk,
                source_id=source.pk,
                interval=m.interval,
                next_due_at=timezone.now() + timedelta(days=1),
            )
            for m in created
        ],
        batch_size=5000,
        update_conflicts=True,
        unique_fields=["monitor"],
        update_fields=["next_due_at"],
    )
    return source, [m.pk for m in created]


def make_due(ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE monitors_schedule SET next_due_at = now() - interval '1 second' "
            "WHERE monitor_id = ANY(%s)",
            [ids],
        )


def others() -> tuple[int, ...]:
    """Owners other than the bench's: their monitors (e.g. the demo's) are left alone."""
    users = get_user_model().objects.exclude(username="bench")
    return tuple(users.values_list("pk", flat=True))


def _evaluate(items: list[tuple[int, object]]) -> int:
    return pipeline.evaluate_batch(items).applied  # type: ignore[arg-type]


def _claim_one(excluded: tuple[int, ...]) -> int:
    claimed = dispatch.claim_due(now=timezone.now(), limit=1, excluded_owner_ids=excluded)
    if not claimed:
        return 0
    c = claimed[0]
    return pipeline.evaluate_batch([(c.monitor_id, c.due_at)]).applied


def batched(ids: list[int], pool: ProcessPoolExecutor) -> tuple[float, int]:
    """One claim, per-source batches evaluated by the worker processes."""
    make_due(ids)
    started = time.perf_counter()
    claimed = dispatch.claim_due(now=timezone.now(), excluded_owner_ids=others())
    batches = dispatch.batches(
        claimed, size=settings.EVALUATION_BATCH_SIZE, spread=settings.EVALUATION_SPREAD
    )
    jobs = [[(c.monitor_id, c.due_at) for c in batch] for batch in batches]
    applied = sum(pool.map(_evaluate, jobs))
    return time.perf_counter() - started, applied


def baseline(ids: list[int], pool: ProcessPoolExecutor) -> tuple[float, int]:
    """One claim, one InfluxDB query and one transaction per monitor, in the same processes."""
    make_due(ids)
    started = time.perf_counter()
    excluded = others()
    applied = sum(pool.map(_claim_one, [excluded] * len(ids), chunksize=50))
    return time.perf_counter() - started, applied


def claim_timing(ids: list[int], runs: int = 5) -> list[float]:
    times = []
    excluded = others()
    for _ in range(runs):
        make_due(ids)
        started = time.perf_counter()
        claimed = dispatch.claim_due(now=timezone.now(), excluded_owner_ids=excluded)
        times.append((time.perf_counter() - started) * 1000)
        assert len(claimed) == len(ids), (len(claimed), len(ids))
    return times


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 10_000, 50_000]
    seed_influx()
    connection.close()
    # spawn: each worker process sets Django up on its own and opens its own connections
    pool = ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"))
    print(
        f"batch size {settings.EVALUATION_BATCH_SIZE}; {DEVICES} device series in InfluxDB; "
        f"{WORKERS} worker processes"
    )
    print(f"{'monitors':>9} {'batched evals/s':>16} {'baseline evals/s':>17} {'speed-up':>9}")
    for size in sizes:
        _, ids = seed_monitors(size)
        batched(ids, pool)  # warm-up: first states written, connections open
        seconds, applied = batched(ids, pool)
        assert applied == size, (applied, size)
        sample = ids[: min(size, BASELINE_SAMPLE)]
        base_seconds, base_applied = baseline(sample, pool)
        assert base_applied == len(sample)
        fast, slow = size / seconds, len(sample) / base_seconds
        print(f"{size:>9,} {fast:>16,.0f} {slow:>17,.0f} {fast / slow:>8.1f}x")
        if size >= 10_000:
            claim = claim_timing(ids[:10_000])
            print(
                f"          dispatcher claim of 10,000 due monitors: median "
                f"{statistics.median(claim):.1f} ms (min {min(claim):.1f}, max {max(claim):.1f},"
                f" {len(claim)} runs)"
            )
    pool.shutdown()
    Monitor.objects.filter(owner__username="bench").delete()


if __name__ == "__main__":
    try:
        main()
    finally:
        customer_influx.stop()
