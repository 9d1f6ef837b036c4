"""Intervals: how long a monitor waits before its next check.

An :data:`Interval` is called with the number of consecutive failed checks so far (0 while
healthy) and returns the next wait, so one signature covers fixed, jittered and backoff waits.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

Interval = Callable[[int], timedelta]


def fixed(every: timedelta) -> Interval:
    """The same wait every time."""
    _positive(every)

    def interval(failures: int) -> timedelta:
        return every

    return interval


def jittered(
    every: timedelta, *, spread: float = 0.1, rng: random.Random | None = None
) -> Interval:
    """``every`` ± ``spread`` (a fraction, 0.1 = ±10 %), so many monitors do not run in step."""
    _positive(every)
    if not 0 <= spread < 1:
        raise ValueError("spread must be in [0, 1)")
    draw = (rng or random.Random()).uniform

    def interval(failures: int) -> timedelta:
        return every * (1 + draw(-spread, spread))

    return interval


def backoff(
    base: timedelta,
    *,
    factor: float = 2.0,
    maximum: timedelta = timedelta(minutes=5),
    jitter: float = 0.1,
    rng: random.Random | None = None,
) -> Interval:
    """``base`` while healthy; after n failures ``base * factor**n``, capped at ``maximum``,
    with ``jitter`` (a fraction) of random spread so retries do not synchronise."""
    _positive(base)
    if factor < 1:
        raise ValueError("factor must be at least 1")
    if maximum < base:
        raise ValueError("maximum must be at least base")
    draw = (rng or random.Random()).uniform

    def interval(failures: int) -> timedelta:
        wait = min(base * (factor ** min(failures, 64)), maximum)
        return wait * (1 + draw(-jitter, jitter)) if jitter else wait

    return interval


def _positive(every: timedelta) -> None:
    if every <= timedelta(0):
        raise ValueError("an interval must be positive")
