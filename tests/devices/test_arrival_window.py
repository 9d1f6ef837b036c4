"""The arrival evaluator's pure parts: a monitor's window (the same interval and aggregate as
the poller's query and the backtest's replay) and reading the stream's line protocol back."""

from __future__ import annotations

import random

import pytest

from devices.arrival import lines
from devices.arrival.window import Window
from monitors.evaluate.aggregate import sliding


@pytest.mark.parametrize("aggregation", ["last", "min", "max", "mean", "count", "sum"])
def test_a_window_agrees_with_the_backtests_sliding_aggregate(aggregation):
    rng = random.Random(aggregation)
    times = sorted(rng.sample(range(0, 60_000), 200))
    values = [round(rng.uniform(-5, 40), 2) for _ in times]
    window = Window(length_ms=5_000, aggregation=aggregation)
    shuffled = list(zip(times, values, strict=True))
    rng.shuffle(shuffled)  # late points go in their place
    for at, value in shuffled:
        window.add(at, "s", value)
    at_ms = list(range(0, 61_000, 250))

    expected = sliding(times, values, at_ms=at_ms, window_ms=5_000, name=aggregation)

    assert [window.value_at(t) for t in at_ms] == expected


def test_the_window_excludes_its_start_and_includes_its_end():
    window = Window(length_ms=2_000, aggregation="count")
    for at in (1_000, 2_000, 3_000):
        window.add(at, "s", 1.0)
    assert window.value_at(3_000) == 2.0  # (1000, 3000]: 2000 and 3000
    assert window.value_at(2_999) == 2.0  # (999, 2999]: 1000 and 2000
    assert window.value_at(4_000) == 1.0  # (2000, 4000]: 3000 only
    assert window.value_at(5_000) is None


def test_a_repeated_point_replaces_the_earlier_one_as_influxdb_does():
    window = Window(length_ms=10_000, aggregation="sum")
    window.add(1_000, "a", 1.0)
    window.add(2_000, "a", 2.0)
    window.add(1_000, "a", 5.0)  # the same series and time: overwritten
    window.add(1_000, "b", 7.0)  # another series at the same time: kept
    assert window.value_at(2_000) == 14.0


def test_forgetting_drops_only_what_no_later_evaluation_sees():
    window = Window(length_ms=2_000, aggregation="count")
    for at in range(0, 10_000, 1_000):
        window.add(at, "s", 1.0)
    window.forget_before(9_000)
    assert len(window) == 2
    assert window.value_at(9_000) == 2.0


def test_stream_lines_read_back_with_escapes_strings_and_integers():
    plain = lines.parse("sensor_value,device=d1,device_id=7 value=20.5,ok=1i 1700000000123456789")
    assert plain is not None
    assert (plain.measurement, plain.tags, plain.fields, plain.time_ms) == (
        "sensor_value",
        {"device": "d1", "device_id": "7"},
        {"value": 20.5, "ok": 1.0},
        1700000000123,
    )
    escaped = lines.parse(
        r'gro01,zone=north\ bay,device_id=7 temperature=21.0,message="a b=c, d" 1000000'
    )
    assert escaped is not None
    assert escaped.tags == {"zone": "north bay", "device_id": "7"}
    assert escaped.fields == {"temperature": 21.0}
    assert lines.parse("not a point") is None
