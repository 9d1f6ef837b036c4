"""Throughput of alerts_core.transition on one core (transitions per second).

A realistic mix: a monitor that mostly passes, crosses into failure for a few evaluations,
recovers, sometimes degrades; pending_for=2, recover_after=2, repeat every 5 minutes and flap
detection on, so every branch of the machine (including the flap arithmetic) is exercised.

    .venv/bin/python bench/bench_transitions.py
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts_core import MonitorState, Outcome, Policy, transition

N = 1_000_000


def outcomes(n: int) -> list[Outcome]:
    rng = random.Random(7)
    passed, failed = Outcome.passed(20.0, "ok"), Outcome.failed(40.0, "above 35")
    degraded, no_data = Outcome.degraded(31.0, "above 30"), Outcome.no_data()
    cycle = [passed] * 40 + [failed] * 6 + [passed] * 10 + [degraded] * 3 + [no_data]
    return [rng.choice(cycle) for _ in range(n)]


def main() -> None:
    policy = Policy(pending_for=2, recover_after=2, repeat_every=timedelta(minutes=5))
    feed = outcomes(N)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = [start + timedelta(seconds=10 * i) for i in range(N)]
    best = 0.0
    events = 0
    for _ in range(3):
        state = MonitorState()
        began = time.perf_counter()
        for outcome, now in zip(feed, times, strict=True):
            state, emitted = transition(state, outcome, policy, now)
            events += len(emitted)
        elapsed = time.perf_counter() - began
        best = max(best, N / elapsed)
    print(f"transitions: {N:,} per run, best of 3 runs, one thread")
    print(f"throughput:  {best:,.0f} transitions/s ({1e6 / best:.2f} µs each)")
    print(f"events emitted over all runs: {events:,}")


if __name__ == "__main__":
    main()
