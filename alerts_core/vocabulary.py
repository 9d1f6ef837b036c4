"""The words of a threshold check on a series: how a window of points is aggregated into one
value, and how that value is compared with the thresholds. The statuses, data policies and
event kinds are in :mod:`alerts_core.state`; these join them as the one source of the values
every layer above uses (growalert's model choices, API schema, pages and backtest)."""

from __future__ import annotations

import enum


class Aggregation(enum.StrEnum):
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    LAST = "last"
    COUNT = "count"
    SUM = "sum"
    MEDIAN = "median"
    PERCENTILE = "percentile"
    CHANGE = "change"  #: last minus first value in the window: a rate of change


class Comparator(enum.StrEnum):
    ABOVE = "above"
    BELOW = "below"
    OUTSIDE = "outside"  #: a range: breached below its low or above its high bound
    INSIDE = "inside"  #: a range: breached within its bounds

    @property
    def is_range(self) -> bool:
        """True when the comparator needs a low and a high bound."""
        return self in (Comparator.OUTSIDE, Comparator.INSIDE)
