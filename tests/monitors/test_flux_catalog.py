"""What a Flux (InfluxDB 2.x) source holds, for the editor: suggestions, the series a fleet
definition matches now, and why a preview is empty — asked of the fake InfluxDB 2.x with the
``schema`` package's calls and one grouped query, every value bound as an option."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from monitors.influxdb import explain
from monitors.influxdb import fleet as influx_fleet
from tests.factories import MonitorFactory, SourceFactory
from tests.fakes.influxdb2 import FakeInfluxDB2, bound_options, grouped_csv, serve

pytestmark = pytest.mark.django_db

NAMES = [("_value", "string", False)]
FIELDS = {"soil": ["moisture", "temp"], "gro01": ["humidity", "temperature"]}
TAGS = {"soil": {"bed": ["1", "2"]}, "gro01": {"device": ["gh-1", "gh-2", "shed"], "zone": ["a"]}}


def names(values: list[str]) -> str:
    return grouped_csv(NAMES, [[[value] for value in values]])


def bucket_of_soil_and_gro01(query: str, bound: dict[str, Any]) -> str | None:
    """Answers the schema package's calls as a bucket with two measurements would."""
    measurement = bound.get("p_measurement", "")
    if "schema.measurements(" in query:
        return names(sorted(FIELDS))
    if "schema.measurementFieldKeys(" in query:
        return names(FIELDS.get(measurement, []))
    if "schema.measurementTagKeys(" in query:  # the system columns come too, as in 2.x
        return names(["_field", "_measurement", "_start", "_stop", *TAGS.get(measurement, {})])
    if "schema.measurementTagValues(" in query:
        return names(TAGS.get(measurement, {}).get(bound["p_tag"], []))
    return None


@pytest.fixture
def influxdb2() -> Iterator[FakeInfluxDB2]:
    fake, server = serve()
    fake.route = bucket_of_soil_and_gro01
    yield fake
    server.shutdown()


def flux_source(fake: FakeInfluxDB2, **overrides: Any):
    source = SourceFactory(
        url=fake.url,
        flavor="flux",
        org="farm",
        database="sensors",
        auth_scheme="token",
        **overrides,
    )
    source.secret = "tok-123"
    source.save()
    return source


def test_a_flux_source_offers_its_measurements_fields_and_tag_values(influxdb2) -> None:
    source = flux_source(influxdb2)

    assert explain.schema(source) == {"measurements": ["gro01", "soil"], "fields": [], "tags": {}}
    assert explain.schema(source, measurement="gro01") == {
        "measurements": ["gro01", "soil"],
        "fields": ["humidity", "temperature"],
        "tags": {"device": ["gh-1", "gh-2", "shed"], "zone": ["a"]},  # no _field, _start…
    }
    sent = [r["body"] for r in influxdb2.requests]
    assert all(bound_options(body)["p_bucket"] == "sensors" for body in sent)
    assert all('import "influxdata/influxdb/schema"' in body["query"] for body in sent)
    assert {bound_options(body).get("p_tag") for body in sent} >= {"device", "zone"}
    assert all("gro01" not in body["query"] for body in sent)  # bound, never written in


def test_an_empty_flux_preview_says_what_the_bucket_lacks(influxdb2) -> None:
    def monitor(**definition: Any):
        return MonitorFactory(source=flux_source(influxdb2), **definition)

    assert explain.why_empty(monitor(measurement="sol", field="moisture", tags={})) == (
        "no measurement `sol` in bucket `sensors`; measurements: gro01, soil"
    )
    assert explain.why_empty(monitor(measurement="soil", field="moisure", tags={})) == (
        "no field `moisure` in `soil`; fields: moisture, temp"
    )
    assert explain.why_empty(monitor(measurement="soil", field="moisture", tags={"bed": "9"})) == (
        "no series of `soil` with bed=9; bed: 1, 2"
    )
    assert (
        explain.why_empty(monitor(measurement="soil", field="moisture", tags={"bed": "2"})) is None
    )


SERIES = [("device", "string", True), ("zone", "string", True)]


def test_a_flux_source_lists_the_series_a_fleet_definition_matches_now(influxdb2) -> None:
    source = flux_source(influxdb2)
    influxdb2.route = lambda query, bound: grouped_csv(
        SERIES,
        [[["gh 1", "a"], ["gh-2", "a"], ["shed", "a"], ["", "a"]]],  # "": no device tag
    )

    found = influx_fleet.matching_series(
        source,
        measurement="gro01",
        group_by=["device"],
        series_filter={"device": ["gh*"]},
        tags={"zone": "a"},
    )

    assert found == {
        "matched": 2,
        "series": [
            {"key": "device=gh 1", "label": "gh 1"},
            {"key": "device=gh-2", "label": "gh-2"},
        ],
        "complete": True,
    }
    [request] = influxdb2.requests
    query, bound = request["body"]["query"], bound_options(request["body"])
    assert (bound["p_bucket"], bound["p_measurement"], bound["p_t0"]) == ("sensors", "gro01", "a")
    assert 'r["zone"] == p_t0' in query  # the fixed tag filtered by InfluxDB
    assert '|> group(columns: ["device"])' in query
    assert "|> limit(n: 1)" in query  # one row per series


def test_the_schema_endpoint_answers_for_a_flux_source(alice, api_client_for, influxdb2) -> None:
    source = flux_source(influxdb2, owner=alice)
    schema_route = influxdb2.route

    def bucket(query: str, bound: dict[str, Any]) -> str | None:
        if "schema." in query:
            return schema_route(query, bound) if schema_route else None
        return grouped_csv(SERIES, [[["gh-1", "a"], ["gh-2", "a"]]])

    influxdb2.route = bucket
    url = f"/sources/{source.pk}/schema?measurement=gro01"

    answer = api_client_for(alice).get(url + "&group_by=device&series_filter=" + json.dumps({}))

    assert answer.status_code == 200
    body = answer.json()
    assert body["fields"] == ["humidity", "temperature"]
    assert body["series"]["matched"] == 2
