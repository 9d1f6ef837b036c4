"""Evaluations per second with 1, 2 and 4 worker processes, and the CPU each component spends
per 1,000 evaluations: the inputs of docs/scaling.md's capacity model.

The batched pipeline of bench_pipeline.py (one claim, per-source batches of
EVALUATION_BATCH_SIZE, one InfluxDB request and one transaction per batch), evaluated by N
worker processes (spawned, each with its own Django and connections, as `celery worker
--concurrency N` would have; no Celery hop), on M monitors (default 10,000) over 1,000 device
series in the customers' test InfluxDB. For each N: a warm-up pass, then ROUNDS passes; each
pass makes every monitor due and evaluates them all. CPU (utime + stime, reaped children
included) of the worker processes, this checkout's Postgres (every backend), both influxd and
the dispatcher (this process: the claim and cutting batches) is read from /proc around each
pass.

    .venv/bin/python bench/bench_scaling.py [--monitors 10000] [--workers 1 2 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import bench_pipeline as bp  # sets Django up (bench/common.py)
import common
from django.conf import settings
from django.db import connection
from django.utils import timezone

from monitors.evaluate import dispatch
from monitors.models import Monitor
from tests import customer_influx


def service_roots() -> dict[str, list[int]]:
    """Postgres and InfluxDB (this bench evaluates without Celery, so Redis does no work)."""
    found = common.service_roots({})
    return {"postgres": found["postgres"], "influxd": found["influxd"]}


cpu = common.cpu_by_tree


def one_pass(ids: list[int], pool: ProcessPoolExecutor) -> tuple[float, int, float]:
    """Every monitor due, claimed, batched and evaluated: (seconds, applied, claim CPU s)."""
    bp.make_due(ids)
    started = time.perf_counter()
    own = time.process_time()
    claimed = dispatch.claim_due(now=timezone.now(), excluded_owner_ids=bp.others())
    batches = dispatch.batches(
        claimed, size=settings.EVALUATION_BATCH_SIZE, spread=settings.EVALUATION_SPREAD
    )
    jobs = [[(c.monitor_id, c.due_at) for c in batch] for batch in batches]
    dispatcher = time.process_time() - own
    applied = sum(pool.map(bp._evaluate, jobs))
    return time.perf_counter() - started, applied, dispatcher


def measure(ids: list[int], workers: int, rounds: int) -> dict[str, float]:
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    one_pass(ids, pool)  # warm-up: processes started, first states written, connections open
    roots = service_roots() | {"workers": list(pool._processes)}
    rates, per_1000 = [], []
    for _ in range(rounds):
        before = cpu(roots)
        seconds, applied, dispatcher = one_pass(ids, pool)
        after = cpu(roots)
        assert applied == len(ids), (applied, len(ids))
        rates.append(applied / seconds)
        spent = {k: after[k] - before[k] for k in roots} | {"dispatcher": dispatcher}
        per_1000.append({k: 1e6 * v / applied for k, v in spent.items()})
    pool.shutdown()
    figures = {"evals/s": statistics.median(rates)}
    for key in per_1000[0]:
        figures[key] = statistics.median(p[key] for p in per_1000)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bp.seed_influx()
    _, ids = bp.seed_monitors(args.monitors)
    connection.close()
    la = os.getloadavg()
    print(
        f"{args.monitors:,} monitors, batch size {settings.EVALUATION_BATCH_SIZE}, "
        f"{bp.DEVICES} series, {os.cpu_count()} cores, median of {args.rounds} passes; "
        f"load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}"
    )
    print(
        f"{'workers':>7} {'evals/s':>8} | CPU ms per 1,000 evaluations: {'workers':>8} "
        f"{'postgres':>9} {'influxd':>8} {'dispatch':>9} {'total':>7}"
    )
    for workers in args.workers:
        f = measure(ids, workers, args.rounds)
        total = f["workers"] + f["postgres"] + f["influxd"] + f["dispatcher"]
        print(
            f"{workers:>7} {f['evals/s']:>8,.0f} | {'':>30}{f['workers']:>8.0f} "
            f"{f['postgres']:>9.0f} {f['influxd']:>8.0f} {f['dispatcher']:>9.1f} {total:>7.0f}",
            flush=True,
        )
    la = os.getloadavg()
    print(f"load average at the end {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")
    Monitor.objects.filter(owner__username="bench").delete()


if __name__ == "__main__":
    try:
        main()
    finally:
        customer_influx.stop()
