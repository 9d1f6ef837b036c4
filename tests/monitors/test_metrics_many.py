"""``shared.metrics.observe_many`` writes what ``Histogram.observe`` would, one write per bucket
(a batch's 1,000 evaluation latencies observed one by one were ~5 % of a steady evaluation)."""

from __future__ import annotations

import math
import uuid

import pytest
from prometheus_client import Histogram

from monitors.metrics import LATENCY_BUCKETS
from shared.metrics import observe_many

AMOUNTS = [0.0, 0.004, 0.005, 0.0051, 0.3, 0.3, 1.0, 2.49, 7.0, 10.0, 10.5, 1e9, -1.0, math.nan]


def histogram() -> Histogram:
    return Histogram(
        f"test_many_{uuid.uuid4().hex}", "test", buckets=LATENCY_BUCKETS, registry=None
    )


def counts(h: Histogram) -> tuple[float, list[float]]:
    return h._sum.get(), [bucket.get() for bucket in h._buckets]


def test_many_amounts_land_in_the_buckets_one_by_one_would() -> None:
    one_by_one, many = histogram(), histogram()

    for amount in AMOUNTS:
        one_by_one.observe(amount)
    observe_many(many, AMOUNTS)

    by_one_sum, by_one_buckets = counts(one_by_one)
    many_sum, many_buckets = counts(many)
    assert many_buckets == by_one_buckets
    assert sum(many_buckets) == len(AMOUNTS) - 1  # NaN: in no bucket
    assert math.isnan(by_one_sum)  # observe lets NaN spoil the sum: observe_many leaves it out
    assert many_sum == pytest.approx(math.fsum(a for a in AMOUNTS if not math.isnan(a)))


def test_nothing_to_observe_writes_nothing() -> None:
    h = histogram()

    observe_many(h, [])

    assert counts(h) == (0.0, [0.0] * (len(LATENCY_BUCKETS) + 1))
