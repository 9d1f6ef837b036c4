"""One monitor's window of recent points, kept incrementally as readings arrive. Pure.

The value at an evaluation time ``t`` is the aggregate of the points with
``t - window < time <= t``: the interval the poller asks InfluxDB for (``time > now() -
window``) and the one the backtest replays (``evaluate.aggregate.sliding``), computed by the
same ``aggregate`` function, so the three agree to the bit. Points are kept in time order (a
late point is inserted in its place); a point repeated with the same time and series replaces
the earlier one, as InfluxDB overwrites it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from monitors.evaluate.aggregate import aggregate

MAX_POINTS = 100_000  # per window: a runaway series cannot eat the evaluator's memory


class Window:
    __slots__ = ("_keys", "_values", "aggregation", "length_ms")

    def __init__(self, *, length_ms: int, aggregation: str) -> None:
        self.length_ms, self.aggregation = length_ms, aggregation
        self._keys: list[tuple[int, str]] = []  # (time ms, series), sorted
        self._values: list[float] = []

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, at_ms: int, series: str, value: float) -> None:
        key = (at_ms, series)
        if not self._keys or key > self._keys[-1]:
            self._keys.append(key)
            self._values.append(value)
        else:
            index = bisect_left(self._keys, key)
            if index < len(self._keys) and self._keys[index] == key:
                self._values[index] = value
            else:
                insort(self._keys, key)
                self._values.insert(index, value)
        if len(self._keys) > MAX_POINTS:
            del self._keys[0], self._values[0]

    def value_at(self, at_ms: int) -> float | None:
        lo = bisect_right(self._keys, (at_ms - self.length_ms, "\uffff"))
        hi = bisect_left(self._keys, (at_ms + 1, ""))
        return aggregate(self.aggregation, self._values[lo:hi])

    def points(self, at_ms: int, limit: int) -> list[tuple[int, float]]:
        """The last ``limit`` points at or before ``at_ms`` (a notification's illustration)."""
        hi = bisect_left(self._keys, (at_ms + 1, ""))
        lo = max(0, hi - limit)
        return [(self._keys[i][0], self._values[i]) for i in range(lo, hi)]

    def forget_before(self, at_ms: int) -> None:
        """Drops the points no evaluation at ``at_ms`` or later can see."""
        cut = bisect_right(self._keys, (at_ms - self.length_ms, "\uffff"))
        if cut:
            del self._keys[:cut], self._values[:cut]
