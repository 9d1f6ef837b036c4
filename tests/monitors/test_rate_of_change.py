"""Rate of change ("falls 3 °C within 20 min"): the ``change`` aggregation, last minus first
value in the window, asked of real InfluxDB (``last(f) - first(f)``, one monitor or GROUP BY a
fleet) and replayed by the backtest, on hand-computed data."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from monitors.evaluate.aggregate import aggregate, sliding
from monitors.evaluate.backtest import Backtest, FleetBacktest, backtest
from monitors.influxdb import client as influx
from monitors.models import SeriesState, Status
from tests.factories import MonitorFactory, SourceFactory
from tests.monitors.test_api import monitor_body
from tests.monitors.test_pipeline import tick

pytestmark = pytest.mark.django_db

# minutes ago -> °C: from 24.0 twenty minutes ago down to 20.8 a minute ago (falls 3.2)
FALLING = {19: 24.0, 10: 22.5, 1: 20.8}
# falls only 2.5 within the window (the 30.0 is older than 20 min: outside it)
GENTLE = {25: 30.0, 18: 24.0, 2: 21.5}
RISING = {15: 18.0, 1: 22.0}


def write(influx_db, series: dict[str, dict[int, float]], now_ms: int) -> None:
    influx_db.client.write(
        [
            influx.line(
                "gro01", {"temperature": v}, tags={"device": d}, timestamp_ms=now_ms - m * 60_000
            )
            for d, points in series.items()
            for m, v in points.items()
        ],
        database=influx_db.database,
    )


def falls_3_in_20_min(owner, influx_db, **overrides):
    """Fires when the temperature fell by more than 3 within 20 minutes (change below -3)."""
    source = overrides.pop("source", None) or SourceFactory(
        owner=owner, database=influx_db.database
    )
    values = {
        "owner": owner, "source": source, "tags": {"device": "greenhouse-1"},
        "aggregation": "change", "window": timedelta(minutes=20), "comparator": "below",
        "critical": -3.0, "interval": timedelta(minutes=1), "flap_detection": False,
        "next_due_at": timezone.now() - timedelta(seconds=1),
    }  # fmt: skip
    return MonitorFactory(**{**values, **overrides})


def test_the_change_is_last_minus_first_and_zero_for_one_point():
    assert aggregate("change", [24.0, 22.5, 20.8]) == 20.8 - 24.0
    assert aggregate("change", [7.0]) == 0.0
    assert aggregate("change", []) is None
    # points at minutes 0..5; a 3-minute window at minute t holds minutes t-2..t
    values = [20.0, 20.0, 19.0, 17.5, 17.0, 18.0]
    times = [m * 60_000 for m in range(6)]
    at = [m * 60_000 for m in (2, 3, 4, 5)]
    assert sliding(times, values, at_ms=at, window_ms=180_000, name="change") == [
        -1.0,  # 19.0 - 20.0
        -2.5,  # 17.5 - 20.0
        -2.0,  # 17.0 - 19.0
        0.5,  # 18.0 - 17.5
    ]


def test_live_a_fall_of_3_2_within_20_minutes_fires_and_a_fall_of_2_5_does_not(owner, influx_db):
    falling = falls_3_in_20_min(owner, influx_db)
    gentle = falls_3_in_20_min(
        owner, influx_db, source=falling.source, tags={"device": "greenhouse-2"}
    )
    write(influx_db, {"greenhouse-1": FALLING, "greenhouse-2": GENTLE}, int(time.time() * 1000))

    [result] = tick()

    assert result.applied == 2
    falling.refresh_from_db()
    gentle.refresh_from_db()
    assert falling.status == Status.FIRING
    assert falling.last_value == 20.8 - 24.0  # exactly as InfluxDB (float64) computes it
    assert falling.status_reason == "-3.2 is below -3 (critical)"
    assert gentle.status == Status.OK
    assert gentle.last_value == 21.5 - 24.0


def test_live_a_fleet_monitor_asks_the_change_of_every_series_in_one_group_by(owner, influx_db):
    monitor = falls_3_in_20_min(owner, influx_db, tags={}, group_by=["device"])
    write(
        influx_db,
        {"a": FALLING, "b": GENTLE, "c": RISING, "d": {3: 19.0}},
        int(time.time() * 1000),
    )

    [result] = tick()

    assert result.series == 4
    rows = {s.key: s for s in SeriesState.objects.filter(monitor=monitor)}
    assert {k: (s.status, s.last_value) for k, s in rows.items()} == {
        "device=a": ("firing", 20.8 - 24.0),
        "device=b": ("ok", 21.5 - 24.0),
        "device=c": ("ok", 22.0 - 18.0),
        "device=d": ("ok", 0.0),  # one point: no change
    }


def test_the_backtest_ends_where_live_evaluation_is(owner, influx_db):
    single = falls_3_in_20_min(owner, influx_db)
    fleet = falls_3_in_20_min(owner, influx_db, tags={}, group_by=["device"])
    write(influx_db, {"greenhouse-1": FALLING, "greenhouse-2": GENTLE}, int(time.time() * 1000))
    tick()
    single.refresh_from_db()
    rows = {s.key: s for s in SeriesState.objects.filter(monitor=fleet)}

    replayed = backtest(single, hours=1)
    per_series = backtest(fleet, hours=1)
    assert isinstance(replayed, Backtest)
    assert isinstance(per_series, FleetBacktest)

    last = replayed.evaluations[-1]
    assert (last["value"], last["status"]) == (single.last_value, single.status)
    # (no data before the first point fires too: the no-data policy's default)
    assert [(e["kind"], e["value"]) for e in replayed.events][-1] == ("fired", 20.8 - 24.0)
    for key, row in rows.items():
        _tags, series = per_series.series[key]
        final = series.evaluations[-1]
        assert (final["value"], final["status"]) == (row.last_value, row.status), key


def test_the_backtest_replays_hand_computed_changes_at_fixed_times(owner, influx_db):
    """Points every 5 minutes from 10:00; a 20-minute window at time t holds (t-20m, t]."""
    monitor = falls_3_in_20_min(owner, influx_db, interval=timedelta(minutes=5))
    start = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    temperatures = [24.0, 24.0, 24.0, 22.0, 21.0, 20.5, 21.0, 22.0, 23.0]  # 10:00 .. 10:40
    influx_db.client.write(
        [
            influx.line(
                "gro01",
                {"temperature": v},
                tags={"device": "greenhouse-1"},
                timestamp_ms=int((start + timedelta(minutes=5 * i)).timestamp() * 1000),
            )
            for i, v in enumerate(temperatures)
        ],
        database=influx_db.database,
    )
    result = backtest(monitor, hours=40 / 60, end=start + timedelta(minutes=40))
    assert isinstance(result, Backtest)
    got = {
        f"{datetime.fromtimestamp(e['time'] / 1000, tz=UTC):%H:%M}": (e["value"], e["status"])
        for e in result.evaluations
    }
    assert got == {
        "10:05": (0.0, "ok"),  # 24.0 (10:05) - 24.0 (10:00)
        "10:10": (0.0, "ok"),  # 24.0 - 24.0 (10:00)
        "10:15": (-2.0, "ok"),  # 22.0 - 24.0 (10:00)
        "10:20": (-3.0, "ok"),  # 21.0 - 24.0 (10:05; 10:00 is out): not below -3
        "10:25": (-3.5, "firing"),  # 20.5 - 24.0 (10:10)
        "10:30": (-1.0, "ok"),  # 21.0 - 22.0 (10:15)
        "10:35": (1.0, "ok"),  # 22.0 - 21.0 (10:20)
        "10:40": (2.5, "ok"),  # 23.0 - 20.5 (10:25)
    }


def test_a_flux_source_can_ask_the_change(alice, api_client_for):
    source = SourceFactory(owner=alice, flavor="flux", org="farm")
    body = monitor_body(source, aggregation="change", comparator="below", critical=-3, warning=-2)
    response = api_client_for(alice).post("/monitors", body, format="json")
    assert response.status_code == 201, response.json()  # tests/monitors/test_flux.py asks it
