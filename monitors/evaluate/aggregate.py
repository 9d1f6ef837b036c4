"""InfluxDB's aggregations in Python, for replaying a monitor over history (the backtest).

Each matches InfluxQL 1.x: ``median`` averages the two middle values of an even count, and
``percentile`` is nearest-rank with index ``floor(n * p / 100 + 0.5) - 1`` (no value when that
falls outside the data), and ``change`` is ``last - first`` (0 for a single point).
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence

from alerts_core import Aggregation


def percentile(values: Sequence[float], pct: float) -> float | None:
    ordered = sorted(values)
    index = math.floor(len(ordered) * pct / 100 + 0.5) - 1
    if index < 0 or index >= len(ordered):
        return None
    return ordered[index]


_FUNCTIONS: dict[str, Callable[[Sequence[float]], float]] = {
    Aggregation.MEAN: statistics.fmean,
    Aggregation.MIN: min,
    Aggregation.MAX: max,
    Aggregation.LAST: lambda v: v[-1],
    Aggregation.COUNT: lambda v: float(len(v)),
    Aggregation.SUM: math.fsum,
    Aggregation.MEDIAN: statistics.median,
    Aggregation.CHANGE: lambda v: v[-1] - v[0],
}


def aggregate(name: str, values: Sequence[float], pct: float | None = None) -> float | None:
    """The aggregation over values in time order; None when there is nothing to aggregate."""
    if not values:
        return None
    if name == Aggregation.PERCENTILE:
        return percentile(values, pct if pct is not None else 50.0)
    return _FUNCTIONS[name](values)


def sliding(
    times_ms: Sequence[int],
    values: Sequence[float],
    *,
    at_ms: Sequence[int],
    window_ms: int,
    name: str,
    pct: float | None = None,
) -> list[float | None]:
    """For each evaluation time t, the aggregate of points with t - window < time <= t.

    ``times_ms`` must be sorted; that is how InfluxDB returns a series."""
    out: list[float | None] = []
    for t in at_ms:
        lo = bisect_right(times_ms, t - window_ms)
        hi = bisect_left(times_ms, t + 1)
        out.append(aggregate(name, values[lo:hi], pct))
    return out
