"""A monitor as plain values (pure, no Django): what it queries and what it compares against.
``Monitor.definition()`` and ``Monitor.thresholds()`` build them; the InfluxDB queries
(``monitors/influxdb/queries.py``) and the judging of a value (``monitors/evaluate/thresholds.py``)
read them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Definition:
    """What a structured monitor queries (the parts of a Monitor that shape the query)."""

    measurement: str
    field: str
    tags: Mapping[str, str]
    aggregation: str  # an alerts_core.Aggregation value
    window: timedelta
    percentile: float | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    comparator: str  # an alerts_core.Comparator value
    critical: float
    critical_high: float | None = None
    warning: float | None = None
    warning_high: float | None = None
    recovery: float | None = None
    period: str = ""  # "day" or "night" for a monitor with a photoperiod, shown in reasons
