"""Day and night (photoperiod) thresholds: which set holds at a moment in the owner's time zone
(daylight saving included), their validation through the API, and the same choice live (real
InfluxDB and Postgres, the clock moved with time_machine) and in the backtest.

Europe/Amsterdam in 2026: summer time starts on 29 March (02:00 CET -> 03:00 CEST) and ends on
25 October (03:00 CEST -> 02:00 CET). Lights on 06:00, off 20:00, local time:
- 28 March (CET, UTC+1): day from 05:00 to 19:00 UTC;
- 29 March (CEST, UTC+2): day from 04:00 to 18:00 UTC;
- 24 October (CEST): night from 18:00 UTC; 25 October (CET): night from 19:00 UTC.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock

import pytest
import time_machine
from django.utils import timezone

from accounts.services import profile_update
from monitors import photoperiod
from monitors.evaluate import pipeline
from monitors.evaluate.backtest import Backtest, backtest
from monitors.influxdb import client as influx
from monitors.models import Incident, Monitor, Notification, SeriesState, Status
from monitors.status_words import status_words, threshold_words
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory
from tests.monitors.test_api import monitor_body

pytestmark = pytest.mark.django_db

AMS = "Europe/Amsterdam"
ON, OFF = clock(6, 0), clock(20, 0)
LIGHTS = {"lights_on": "06:00", "lights_off": "20:00"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "night"),
    [
        ("2026-03-28T04:59:59", True),  # CET: lights on at 05:00 UTC
        ("2026-03-28T05:00:00", False),
        ("2026-03-29T03:59:59", True),  # the spring switch day: lights on at 04:00 UTC
        ("2026-03-29T04:00:00", False),
        ("2026-03-29T17:59:59", False),  # lights off at 18:00 UTC (20:00 CEST)
        ("2026-03-29T18:00:00", True),
        ("2026-10-24T17:59:59", False),  # CEST: lights off at 18:00 UTC
        ("2026-10-24T18:00:00", True),
        ("2026-10-25T18:59:59", False),  # the autumn switch day: lights off at 19:00 UTC
        ("2026-10-25T19:00:00", True),
        ("2026-10-25T04:59:59", True),  # lights on at 05:00 UTC (06:00 CET)
        ("2026-10-25T05:00:00", False),
    ],
)
def test_the_night_follows_the_wall_clock_of_the_time_zone_across_daylight_saving(moment, night):
    assert photoperiod.is_night(utc(moment), ON, OFF, AMS) is night


def test_a_day_across_midnight_and_the_skipped_spring_hour():
    # lights on 20:00, off 08:00 (a night-grown crop): 23:00 local is day, noon is night
    assert not photoperiod.is_night(utc("2026-01-10T22:00:00"), clock(20), clock(8), AMS)
    assert photoperiod.is_night(utc("2026-01-10T11:00:00"), clock(20), clock(8), AMS)
    # lights on at 02:30, a time the spring night skips: day from 03:00 CEST (01:00 UTC)
    on = clock(2, 30)
    assert photoperiod.is_night(utc("2026-03-29T00:59:59"), on, OFF, AMS)
    assert not photoperiod.is_night(utc("2026-03-29T01:00:00"), on, OFF, AMS)


def test_no_photoperiod_is_never_night_and_an_unknown_zone_is_utc():
    assert not photoperiod.is_night(utc("2026-01-10T23:00:00"), None, None, AMS)
    assert photoperiod.is_night(utc("2026-01-10T05:59:00"), ON, OFF, "Mars/Olympus")
    assert not photoperiod.is_night(utc("2026-01-10T06:00:00"), ON, OFF, "Mars/Olympus")


def test_the_monitor_picks_its_thresholds_by_the_moment_and_names_the_period():
    monitor = Monitor(
        comparator="above", critical=30.0, warning=28.0, lights_on=ON, lights_off=OFF,
        night_critical=20.0, night_warning=18.0,
    )  # fmt: skip
    night = monitor.thresholds_at(utc("2026-03-29T03:59:59"), AMS)
    day = monitor.thresholds_at(utc("2026-03-29T04:00:00"), AMS)
    assert (night.critical, night.warning, night.period) == (20.0, 18.0, "night")
    assert (day.critical, day.warning, day.period) == (30.0, 28.0, "day")
    plain = Monitor(comparator="above", critical=30.0)
    assert plain.thresholds_at(utc("2026-03-29T01:00:00"), AMS).period == ""


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"lights_on": "06:00"}, "lights_off", "lights on and lights off go together"),
        ({"lights_off": "20:00"}, "lights_on", "lights on and lights off go together"),
        ({"lights_on": "06:00", "lights_off": "06:00"}, "lights_off", "must differ"),
        (
            {"lights_on": "06:00", "lights_off": "20:00"},
            "night_critical",
            "required with lights on and lights off",
        ),
        ({"night_critical": 20}, "night_critical", "night thresholds need lights on and"),
        (
            {**LIGHTS, "night_critical": 20, "night_warning": 25},
            "night_warning",
            "must be below night_critical (20.0)",
        ),
        (
            {"lights_on": "06:00", "lights_off": "20:00", "night_critical": 2e15},
            "night_critical",
            "must be a finite number between -1e15 and 1e15",
        ),
        ({"lights_on": "25:00", "lights_off": "20:00"}, "lights_on", "Time has wrong format"),
    ],
)
def test_the_photoperiod_is_validated_with_clear_errors(
    alice, api_client_for, overrides, field, message
):
    response = api_client_for(alice).post(
        "/monitors", monitor_body(SourceFactory(owner=alice), **overrides), format="json"
    )
    assert response.status_code == 400, response.json()
    assert any(message in text for text in response.json()[field]), response.json()


def test_a_photoperiod_is_created_and_read_through_the_api(alice, api_client_for):
    body = monitor_body(
        SourceFactory(owner=alice), lights_on="06:00", lights_off="20:00",
        night_critical=20, night_recovery=19,
    )  # fmt: skip
    client = api_client_for(alice)
    created = client.post("/monitors", body, format="json")
    assert created.status_code == 201, created.json()
    read = client.get(f"/monitors/{created.json()['id']}").json()
    listed = client.get("/monitors").json()["results"][0]
    for data in (created.json(), read, listed):
        assert data["lights_on"] == "06:00:00"
        assert data["lights_off"] == "20:00:00"
        assert data["night_critical"] == 20.0
        assert data["night_recovery"] == 19.0
        assert data["night_warning"] is None


def test_the_schema_documents_the_photoperiod(client):
    schema = client.get("/api/schema").content
    for name in (b"lights_on", b"lights_off", b"night_critical", b"night_recovery"):
        assert name in schema


# ---------------------------------------------------------------- live and backtest


def write_now(influx_db, values: dict[str, float]) -> None:
    """One point per device one second ago (real time: InfluxDB's now() is the real clock)."""
    now_ms = int(time.time() * 1000) - 1000
    influx_db.client.write(
        [
            influx.line("gro01", {"temperature": v}, tags={"device": d}, timestamp_ms=now_ms)
            for d, v in values.items()
        ],
        database=influx_db.database,
    )


def photoperiod_monitor(owner, influx_db, **overrides) -> Monitor:
    profile_update(user=owner, time_zone=AMS)
    source = SourceFactory(owner=owner, database=influx_db.database)
    values = {
        "owner": owner, "source": source, "tags": {"device": "greenhouse-1"},
        "aggregation": "last", "window": timedelta(minutes=1), "interval": timedelta(minutes=1),
        "critical": 30.0, "lights_on": ON, "lights_off": OFF, "night_critical": 20.0,
        "flap_detection": False,
    }  # fmt: skip
    return MonitorFactory(**{**values, **overrides})


def evaluate_at(monitor: Monitor, moment: str) -> None:
    with time_machine.travel(utc(moment), tick=False):
        result = pipeline.evaluate_batch([(monitor.pk, timezone.now())])
    assert result.applied == 1, result


def test_live_a_reading_of_25_fires_at_night_and_resolves_at_lights_on_on_the_spring_day(
    owner, influx_db
):
    monitor = photoperiod_monitor(owner, influx_db)
    monitor.channels.set([ChannelFactory(owner=owner)])
    write_now(influx_db, {"greenhouse-1": 25.0})

    evaluate_at(monitor, "2026-03-29T03:59:30")  # 05:59:30 CEST: night
    monitor.refresh_from_db()
    assert monitor.status == Status.FIRING
    assert monitor.status_reason == "25 is above 20 (critical, night)"
    fired = Notification.objects.get(monitor=monitor, event="fired").payload
    assert (fired["threshold"], fired["reason"]) == (20.0, "25 is above 20 (critical, night)")

    evaluate_at(monitor, "2026-03-29T04:00:30")  # 06:00:30 CEST: day
    monitor.refresh_from_db()
    assert monitor.status == Status.OK
    assert monitor.status_reason == "25 is within limits (critical above 30, day)"
    incident = Incident.objects.get(monitor=monitor)
    assert not incident.is_open


def test_live_the_same_utc_time_is_still_night_the_day_before_the_switch(owner, influx_db):
    monitor = photoperiod_monitor(owner, influx_db)
    write_now(influx_db, {"greenhouse-1": 25.0})
    evaluate_at(monitor, "2026-03-28T04:30:00")  # 05:30 CET: night
    monitor.refresh_from_db()
    assert monitor.status == Status.FIRING


def test_live_a_fleet_monitor_judges_every_series_by_the_night_thresholds(owner, influx_db):
    monitor = photoperiod_monitor(owner, influx_db, tags={}, group_by=["device"])
    write_now(influx_db, {"a": 25.0, "b": 15.0, "c": 35.0})

    monitor.channels.set([ChannelFactory(owner=owner)])
    evaluate_at(monitor, "2026-10-25T19:00:00")  # 20:00 CET on the autumn day: night
    fired = Notification.objects.filter(monitor=monitor, event="fired", series_key="device=a")
    assert fired.get().payload["threshold"] == 20.0
    rows = {s.key: s for s in SeriesState.objects.filter(monitor=monitor)}
    assert {k: s.status for k, s in rows.items()} == {
        "device=a": "firing",
        "device=b": "ok",
        "device=c": "firing",
    }
    assert rows["device=a"].status_reason == "25 is above 20 (critical, night)"

    evaluate_at(monitor, "2026-10-26T05:00:00")  # 06:00 CET: day
    rows = {s.key: s for s in SeriesState.objects.filter(monitor=monitor)}
    assert {k: s.status for k, s in rows.items()} == {
        "device=a": "ok",
        "device=b": "ok",
        "device=c": "firing",
    }


def test_the_backtest_switches_at_the_same_moments_as_live_evaluation(owner, influx_db):
    """25 every minute around lights on on the spring switch day: the backtest fires before
    04:00 UTC and resolves at it, as the live evaluations above did at 03:59:30 and 04:00:30."""
    monitor = photoperiod_monitor(owner, influx_db)
    start = utc("2026-03-29T03:40:00")
    influx_db.client.write(
        [
            influx.line(
                "gro01",
                {"temperature": 25.0},
                tags={"device": "greenhouse-1"},
                timestamp_ms=int((start + timedelta(minutes=m)).timestamp() * 1000),
            )
            for m in range(41)
        ],
        database=influx_db.database,
    )
    result = backtest(monitor, hours=0.5, end=utc("2026-03-29T04:10:00"))
    assert isinstance(result, Backtest)
    assert result.error is None
    by_time = {
        datetime.fromtimestamp(e["time"] / 1000, tz=UTC).strftime("%H:%M"): e
        for e in result.evaluations
    }
    assert by_time["03:59"]["status"] == "firing"
    assert by_time["03:59"]["reason"] == "25 is above 20 (critical, night)"
    assert by_time["04:00"]["status"] == "ok"
    assert by_time["04:00"]["reason"] == "25 is within limits (critical above 30, day)"
    kinds = [(datetime.fromtimestamp(e["time"] / 1000, tz=UTC), e["kind"]) for e in result.events]
    assert kinds == [
        (utc("2026-03-29T03:41:00"), "fired"),
        (utc("2026-03-29T04:00:00"), "resolved"),
    ]


def test_the_pages_say_which_threshold_holds_now():
    monitor = Monitor(
        comparator="above", critical=30.0, lights_on=ON, lights_off=OFF, night_critical=20.0,
        status="pending", pending_for=3, interval=timedelta(minutes=1), last_value=25.0,
        last_evaluated_at=utc("2026-03-29T03:00:00"), enabled=True,
    )  # fmt: skip
    monitor.time_zone = AMS
    words = status_words(monitor, now=utc("2026-03-29T03:00:30"))  # 05:00:30 CEST
    assert "if still above 20 at night (now 25)" in words.sentence
    assert threshold_words(monitor, now=utc("2026-03-29T12:00:00")) == "above 30"


def test_live_a_steady_monitor_kept_by_the_worker_switches_to_the_night_thresholds(
    owner, influx_db
):
    """An evaluation that changes nothing keeps the monitor in the worker between ticks
    (monitors/evaluate/resident.py): the thresholds are still picked at each evaluation."""
    monitor = photoperiod_monitor(owner, influx_db)
    write_now(influx_db, {"greenhouse-1": 25.0})

    evaluate_at(monitor, "2026-03-30T17:58:00")  # 19:58 CEST: day, 25 is fine
    evaluate_at(monitor, "2026-03-30T17:59:00")  # nothing changed: kept as it was loaded
    monitor.refresh_from_db()
    assert monitor.status == Status.OK

    evaluate_at(monitor, "2026-03-30T18:00:30")  # 20:00:30 CEST: night
    monitor.refresh_from_db()
    assert monitor.status == Status.FIRING
    assert monitor.status_reason == "25 is above 20 (critical, night)"


def test_live_a_time_zone_change_applies_to_a_monitor_kept_by_the_worker(owner, influx_db):
    monitor = photoperiod_monitor(owner, influx_db)
    write_now(influx_db, {"greenhouse-1": 25.0})
    evaluate_at(monitor, "2026-03-30T12:00:00")  # 14:00 CEST: day
    evaluate_at(monitor, "2026-03-30T12:01:00")
    monitor.refresh_from_db()
    assert monitor.status == Status.OK

    profile_update(user=owner, time_zone="Pacific/Auckland")  # 01:02 there: night
    evaluate_at(monitor, "2026-03-30T12:02:00")
    monitor.refresh_from_db()
    assert monitor.status == Status.FIRING
