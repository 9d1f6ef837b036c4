"""The Flux flavour, against a fake InfluxDB 2.x that speaks the documented annotated CSV."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from billing.gating import comp
from monitors.definition import Definition
from monitors.influxdb import client as influx
from monitors.influxdb import fleet as influx_fleet
from monitors.influxdb import observe, queries
from monitors.models import Incident, SeriesState
from tests.factories import MonitorFactory, SourceFactory
from tests.fakes.influxdb2 import FakeInfluxDB2, annotated_csv, grouped_csv, serve
from tests.monitors.test_pipeline import tick


@pytest.fixture
def influxdb2() -> Iterator[FakeInfluxDB2]:
    fake, server = serve()
    yield fake
    server.shutdown()


def flux_monitor(fake: FakeInfluxDB2, **overrides):
    source = SourceFactory(
        url=fake.url, flavor="flux", org="farm", database="sensors", auth_scheme="token"
    )
    source.secret = "tok-123"
    source.save()
    return MonitorFactory(owner=source.owner, source=source, **overrides)


def test_flux_binds_every_value_as_an_option_and_escapes_tag_keys() -> None:
    definition = Definition(
        measurement="gro01",
        field="temperature",
        tags={'dev"${x}': "greenhouse-1"},
        aggregation="percentile",
        window=timedelta(minutes=5),
        percentile=95,
    )

    query = queries.flux_latest(definition, bucket="sensors")

    assert 'r["dev\\"\\${x}"] == p_t0' in query.text
    assert "greenhouse-1" not in query.text
    assert query.params == {
        "p_bucket": "sensors",
        "p_start": -timedelta(minutes=5),
        "p_measurement": "gro01",
        "p_field": "temperature",
        "p_t0": "greenhouse-1",
        "p_quantile": 0.95,
    }


@pytest.mark.django_db
def test_a_flux_monitor_reads_its_value_from_annotated_csv(influxdb2: FakeInfluxDB2) -> None:
    monitor = flux_monitor(influxdb2)
    influxdb2.csv = annotated_csv(
        [27.25], measurement="gro01", field_name="temperature", tags={"device": "greenhouse-1"}
    )

    observation = observe.observe(monitor)

    assert observation.value == 27.25
    request = influxdb2.requests[0]
    assert request["path"] == "/api/v2/query?org=farm"
    assert request["headers"]["Authorization"] == "Token tok-123"
    assert request["body"]["query"].startswith("from(bucket: p_bucket)")
    options = {
        s["assignment"]["id"]["name"]: s["assignment"]["init"]
        for s in request["body"]["extern"]["body"]
    }
    assert options["p_t0"] == {"type": "StringLiteral", "value": "greenhouse-1"}
    assert options["p_bucket"] == {"type": "StringLiteral", "value": "sensors"}


@pytest.mark.django_db
def test_an_empty_flux_result_is_no_data(influxdb2: FakeInfluxDB2) -> None:
    observation = observe.observe(flux_monitor(influxdb2))

    assert observation.no_data


@pytest.mark.django_db
def test_a_rejected_flux_token_is_an_auth_error(influxdb2: FakeInfluxDB2) -> None:
    influxdb2.status = 401

    observation = observe.observe(flux_monitor(influxdb2))

    assert isinstance(observation.error, influx.InfluxAuthError)


@pytest.mark.django_db
def test_an_unreachable_flux_server_is_reported_as_unreachable() -> None:
    source = SourceFactory(url="http://127.0.0.1:9", flavor="flux", org="farm", timeout_seconds=1)
    monitor = MonitorFactory(owner=source.owner, source=source)

    observation = observe.observe(monitor)

    assert isinstance(observation.error, influx.InfluxUnreachable)


# ---------------------------------------------------------------- change and fleet monitors
# No InfluxDB 2.x (nor 1.7+, whose Flux endpoint could be enabled) can run here: the suite's
# influxd is Debian's 1.6, which has no Flux. These tests check the Flux that is sent and the
# reading of answers in the documented annotated-CSV form, not a real server's results.

SERIES_COLUMNS = [("device", "string", True), ("_value", "double", False)]


def options(request: dict[str, Any]) -> dict[str, Any]:
    return {
        s["assignment"]["id"]["name"]: s["assignment"]["init"]
        for s in request["body"]["extern"]["body"]
    }


def test_the_change_in_flux_is_last_minus_first_of_every_point_in_time_order() -> None:
    definition = Definition(
        measurement="gro01",
        field="temperature",
        tags={"site": "north"},
        aggregation="change",
        window=timedelta(minutes=20),
    )

    query = queries.flux_latest(definition, bucket="sensors")

    lines = query.text.splitlines()
    assert lines[:4] == [
        "from(bucket: p_bucket)",
        "  |> range(start: p_start)",
        "  |> filter(fn: (r) => r._measurement == p_measurement and r._field == p_field)",
        '  |> filter(fn: (r) => r["site"] == p_t0)',
    ]
    assert lines[4:6] == ["  |> group()", '  |> sort(columns: ["_time"])']
    assert "first: if accumulator.n == 0 then float(v: r._value) else accumulator.first" in (
        query.text
    )
    assert lines[-1] == "  |> map(fn: (r) => ({r with _value: r.last - r.first}))"
    assert query.params["p_t0"] == "north"


@pytest.mark.django_db
def test_a_flux_change_monitor_reads_the_folded_value(influxdb2: FakeInfluxDB2) -> None:
    monitor = flux_monitor(
        influxdb2, aggregation="change", comparator="below", critical=-3, warning=None
    )
    # what reduce() and map() leave: the group key, the accumulator and _value
    influxdb2.csv = grouped_csv(
        [("first", "double", False), ("last", "double", False), ("n", "long", False),
         ("_value", "double", False)],
        [[["24", "20.5", "4", "-3.5"]]],
    )  # fmt: skip

    observation = observe.observe(monitor)

    assert observation.value == -3.5
    assert "reduce(" in influxdb2.requests[0]["body"]["query"]


def test_a_fleet_query_in_flux_groups_by_the_series_tags_with_bound_values() -> None:
    definition = Definition(
        measurement="gro01",
        field="temperature",
        tags={},
        aggregation="max",
        window=timedelta(minutes=5),
    )

    query = queries.flux_latest_by(
        definition, ["device", 'zo"ne'], {"device": ["shed", "barn"]}, bucket="sensors"
    )

    lines = query.text.splitlines()
    assert lines[3:] == [
        '  |> filter(fn: (r) => r["device"] == p_c0_0 or r["device"] == p_c0_1)',
        '  |> group(columns: ["device", "zo\\"ne"])',
        '  |> sort(columns: ["_time"])',
        "  |> max()",
        '  |> keep(columns: ["device", "zo\\"ne", "_value"])',
    ]
    assert (query.params["p_c0_0"], query.params["p_c0_1"]) == ("shed", "barn")
    assert "shed" not in query.text


@pytest.mark.django_db
def test_a_flux_fleet_monitor_keeps_one_state_per_series(influxdb2: FakeInfluxDB2) -> None:
    monitor = flux_monitor(
        influxdb2,
        tags={},
        group_by=["device"],
        series_filter={"device": ["greenhouse-*"]},
        aggregation="max",
        critical=35,
        next_due_at=timezone.now() - timedelta(seconds=1),
    )
    influxdb2.csv = grouped_csv(
        SERIES_COLUMNS,
        [[["greenhouse-1", "20.5"]], [["greenhouse-2", "41"]], [["shed", "50"]]],
    )

    comp(monitor.owner)  # served: the dispatcher claims its monitors

    [result] = tick()

    assert result.applied == 1
    rows = {s.key: s for s in SeriesState.objects.filter(monitor=monitor)}
    assert {k: (s.status, s.last_value) for k, s in rows.items()} == {
        "device=greenhouse-1": ("ok", 20.5),
        "device=greenhouse-2": ("firing", 41.0),  # shed: not selected by the filter
    }
    assert Incident.objects.get(monitor=monitor).series_key == "device=greenhouse-2"
    sent = influxdb2.requests[0]["body"]["query"]
    assert '|> group(columns: ["device"])' in sent
    assert options(influxdb2.requests[0])["p_measurement"]["value"] == monitor.measurement


@pytest.mark.django_db
def test_a_failing_flux_fleet_query_errors_every_series(influxdb2: FakeInfluxDB2) -> None:
    monitor = flux_monitor(
        influxdb2, tags={}, group_by=["device"], next_due_at=timezone.now() - timedelta(seconds=1)
    )
    influxdb2.status = 401

    observation = influx_fleet.observe_fleets([monitor])[monitor.pk]

    assert isinstance(observation.error, influx.InfluxAuthError)


@pytest.mark.django_db
def test_a_flux_fleet_backtest_reads_each_series_points_in_time_order(
    influxdb2: FakeInfluxDB2,
) -> None:
    monitor = flux_monitor(influxdb2, tags={}, group_by=["device"], critical=35)
    influxdb2.csv = grouped_csv(
        [("device", "string", True), ("_time", "dateTime:RFC3339", False),
         ("_value", "double", False)],
        [
            [["a", "2026-11-24T08:00:00Z", "20"], ["a", "2026-11-24T08:01:00Z", "36.5"]],
            [["b", "2026-11-24T08:00:30Z", "21"]],
        ],
    )  # fmt: skip
    end = datetime(2026, 11, 24, 8, 5, tzinfo=UTC)

    found = influx_fleet.points_by_series(monitor, start=end - timedelta(minutes=5), end=end)

    assert {k: s.points for k, s in found.items()} == {
        "device=a": [(1795507200000, 20.0), (1795507260000, 36.5)],
        "device=b": [(1795507230000, 21.0)],
    }
    bound = options(influxdb2.requests[0])
    assert bound["p_start"] == {
        "type": "DateTimeLiteral",
        "value": "2026-11-24T08:00:00.000000000Z",
    }
    assert bound["p_stop"]["type"] == "DateTimeLiteral"


@pytest.mark.django_db
def test_the_editor_lists_the_series_a_flux_fleet_monitor_would_watch(
    influxdb2: FakeInfluxDB2, api_client_for
) -> None:
    source = flux_monitor(influxdb2).source
    # what keep(), group(), limit(n: 1) and group() leave: one table, a row per series
    influxdb2.csv = grouped_csv(
        [("device", "string", False), ("zone", "string", False)],
        [[["greenhouse-1", "a"], ["greenhouse-2", "a"], ["greenhouse-2", "b"], ["shed", "a"],
          ["", "a"]]],
    )  # fmt: skip
    # the schema package's measurement list names gro01 (the rest answers with the series)
    influxdb2.route = lambda query, bound: (
        grouped_csv([("_value", "string", False)], [[["gro01"]]])
        if "schema.measurements(" in query
        else None
    )
    client = api_client_for(source.owner)
    url = f"/sources/{source.pk}/schema?measurement=gro01&group_by=device,zone"
    chosen = json.dumps({"device": ["greenhouse-*", "shed"], "zone": ["a"]})

    found = client.get(url + f'&series_filter={chosen}&tags={{"site": "north"}}').json()

    assert found["series"] == {
        "matched": 3,  # greenhouse-2 / b is not in zone a; the row without a device is no series
        "series": [
            {"key": "device=greenhouse-1,zone=a", "label": "greenhouse-1 / a"},
            {"key": "device=greenhouse-2,zone=a", "label": "greenhouse-2 / a"},
            {"key": "device=shed,zone=a", "label": "shed / a"},
        ],
        "complete": True,
    }
    body = influxdb2.requests[-1]["body"]
    flux = body["query"]
    assert "range(start: p_start)" in flux
    assert 'r["site"] == p_t0' in flux
    assert 'r["zone"] == p_c0_0' in flux  # zone's exact value is selected by InfluxDB
    assert "greenhouse" not in flux  # device has a pattern: matched by growalert
    assert "north" not in flux
    assert 'keep(columns: ["device", "zone"])' in flux
    assert 'group(columns: ["device", "zone"])' in flux
    assert "limit(n: 10001)" in flux
    assert queries.flux_series_of(
        "gro01", ["device"], {}, {}, bucket="sensors", limit=5
    ).params == {"p_bucket": "sensors", "p_start": -timedelta(days=1), "p_measurement": "gro01"}

    influxdb2.status = 401
    assert client.get(url).status_code == 502  # the source's refusal, said as InfluxDB's
