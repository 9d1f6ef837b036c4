"""One worker's evaluate_batch, tick after tick, in this process: how many monitors each tick
loads through the ORM (the rest are kept, monitors/evaluate/resident.py), its CPU, and a
cProfile of the last tick.

Seeds N monitors with bench_pipeline's helpers (mean over 1 min, flap detection on: a new
monitor's flap history grows on each of its first checks, a whole write each time) and
evaluates them all as one batch TICKS times, each tick due later than the one before.

    .venv/bin/python bench/profile_evaluate_batch.py [N]        (default 1000; TICKS=25)
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time

import bench_pipeline  # sets Django up (bench/ is first on sys.path)
from django.utils import timezone

from monitors.evaluate import pipeline
from monitors.models import Monitor
from tests import customer_influx

TICKS = int(os.environ.get("TICKS", "25"))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    bench_pipeline.seed_influx()
    _, ids = bench_pipeline.seed_monitors(n)
    loaded: list[int] = []
    load_rows = pipeline._load_rows

    def counting(part: list[int]) -> list[Monitor]:
        loaded.extend(part)
        return load_rows(part)

    pipeline._load_rows = counting  # type: ignore[assignment]
    print(f"{n:,} monitors, one batch a tick; load average {os.getloadavg()}")
    profile = cProfile.Profile()
    for tick in range(TICKS):
        loaded.clear()
        now = timezone.now()
        if tick == TICKS - 1:
            profile.enable()
        started = time.process_time()
        result = pipeline.evaluate_batch([(pk, now) for pk in ids])
        cpu_ms = (time.process_time() - started) * 1000
        profile.disable()
        print(
            f"tick {tick:2}: applied {result.applied:,}, loaded {len(loaded):,}, "
            f"CPU {cpu_ms:.0f} ms"
        )
        time.sleep(0.05)
    pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    Monitor.objects.filter(pk__in=ids).delete()


if __name__ == "__main__":
    try:
        main()
    finally:
        customer_influx.stop()
