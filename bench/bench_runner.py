"""alerts_core.Runner: 10,000 monitors at a 1 s interval with trivial checks, in one process.

Reports the scheduling lag (actual start of a check minus its due time) p50/p99/max after a
warm-up, the CPU the process used per wall-clock second, and the number of threads.

    .venv/bin/python bench/bench_runner.py [monitors] [seconds] [workers]
"""

from __future__ import annotations

import random
import resource
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts_core import Monitor, Policy, Runner, fixed


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    monitors = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    warmup = 3.0
    lags: list[float] = []
    measuring = threading.Event()

    def on_lag(lag: float) -> None:
        if measuring.is_set():
            lags.append(lag)

    rng = random.Random(1)
    runner = Runner(workers=workers, on_lag=on_lag)
    every = fixed(timedelta(seconds=1))
    policy = Policy()
    for i in range(monitors):
        fails = i % 100 == 0  # 1 % of monitors fail, so alerts and transitions happen too
        runner.add(
            Monitor(
                f"m{i}",
                (lambda ctx: (False, None)) if fails else (lambda ctx: (True, None)),
                lambda ctx, *errors: None,
                every,
                policy,
            ),
            delay=rng.random(),  # spread first runs over the first second
        )
    runner.start()
    time.sleep(warmup)
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    measuring.set()
    time.sleep(seconds)
    measuring.clear()
    cpu1, wall1 = cpu_seconds(), time.monotonic()
    threads = threading.active_count()
    runner.stop()
    runs = len(lags)
    print(
        f"monitors: {monitors:,} at a 1 s interval, {workers} worker threads "
        f"({threads} threads in the process incl. main and scheduler)"
    )
    print(
        f"measured: {wall1 - wall0:.1f} s after {warmup:.0f} s warm-up, {runs:,} checks "
        f"({runs / (wall1 - wall0):,.0f}/s)"
    )
    print(
        f"scheduling lag: p50 {percentile(lags, 50) * 1000:.1f} ms, "
        f"p99 {percentile(lags, 99) * 1000:.1f} ms, max {max(lags) * 1000:.1f} ms"
    )
    print(f"CPU: {(cpu1 - cpu0) / (wall1 - wall0) * 100:.0f}% of one core")


if __name__ == "__main__":
    main()
