"""One monitor's window of recent points, kept incrementally as readings arrive. Pure.

The value at an evaluation time ``t`` is the aggregate of the points with
``t - window < time <= t``: the interval the poller asks InfluxDB for (``time > now() -
window``) and the one the backtest replays (``evaluate.aggregate.sliding``), computed by the
same ``aggregate`` function, so the three agree to the bit. Points are kept in time order (a
late point is inserted in its place); a point repeated with the same time and series replaces
the earlier one, as InfluxDB overwrites it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from monitors.evaluate.aggregate import aggregate

MAX_POINTS = 100_000  # per window: a runaway series cannot eat the evaluator's memory


class Window:
    __slots__ = ("_series", "_times", "_values", "aggregation", "length_ms")

    def __init__(self, *, length_ms: int, aggregation: str) -> None:
        self.length_ms, self.aggregation = length_ms, aggregation
        self._times: list[int] = []  # sorted
        self._series: list[str] = []
        self._values: list[float] = []

    def __len__(self) -> int:
        return len(self._times)

    def add(self, at_ms: int, series: str, value: float) -> None:
        times = self._times
        if not times or at_ms > times[-1]:  # the usual case: newer than everything
            times.append(at_ms)
            self._series.append(series)
            self._values.append(value)
        else:
            self._insert(at_ms, series, value)
        if len(times) > MAX_POINTS:
            del times[0], self._series[0], self._values[0]

    def _insert(self, at_ms: int, series: str, value: float) -> None:
        """A point not newer than the newest: replaces the same time and series, else goes in
        its place (after the points of the same time)."""
        lo = bisect_left(self._times, at_ms)
        hi = bisect_right(self._times, at_ms)
        for index in range(lo, hi):
            if self._series[index] == series:
                self._values[index] = value
                return
        self._times.insert(hi, at_ms)
        self._series.insert(hi, series)
        self._values.insert(hi, value)

    def value_at(self, at_ms: int) -> float | None:
        times = self._times
        lo = bisect_right(times, at_ms - self.length_ms)
        hi = len(times) if times and times[-1] <= at_ms else bisect_right(times, at_ms)
        if lo >= hi:
            return None
        if self.aggregation == "last":
            return self._values[hi - 1]
        return aggregate(self.aggregation, self._values[lo:hi])

    def points(self, at_ms: int, limit: int) -> list[tuple[int, float]]:
        """The last ``limit`` points at or before ``at_ms`` (a notification's illustration)."""
        hi = bisect_right(self._times, at_ms)
        lo = max(0, hi - limit)
        return list(zip(self._times[lo:hi], self._values[lo:hi], strict=True))

    def forget_before(self, at_ms: int) -> None:
        """Drops the points no evaluation at ``at_ms`` or later can see."""
        edge = at_ms - self.length_ms
        if not self._times or self._times[0] > edge:
            return
        cut = bisect_right(self._times, edge)
        del self._times[:cut], self._series[:cut], self._values[:cut]
