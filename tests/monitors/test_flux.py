"""The Flux flavour, against a fake InfluxDB 2.x that speaks the documented annotated CSV."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from monitors.definition import Definition
from monitors.influxdb import client as influx
from monitors.influxdb import observe, queries
from tests.factories import MonitorFactory, SourceFactory
from tests.fakes.influxdb2 import FakeInfluxDB2, annotated_csv, serve


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
