"""The query layer against the real influxd: aggregations, and injection that must not work."""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

import pytest

from monitors.definition import Definition
from monitors.influxdb import client as influx
from monitors.influxdb import queries
from monitors.influxdb.queries import InvalidQuery


def definition(**overrides: Any) -> Definition:
    fields: dict[str, Any] = {
        "measurement": "gro01",
        "field": "temperature",
        "tags": {"device": "greenhouse-1"},
        "aggregation": "mean",
        "window": timedelta(minutes=5),
    }
    fields.update(overrides)
    return Definition(**fields)


def value_of(seeded, query: queries.Query) -> float | None:
    results = seeded.client.query(query.text, database=seeded.database, params=query.params)
    rows = influx.points(results[0].series)
    return rows[0]["value"] if rows else None


VALUES = [21.0, 25.0, 19.0, 30.0, 27.0, 24.0]


@pytest.fixture
def seeded(influx_db):
    influx_db.write(
        "gro01",
        "temperature",
        [(10 + i * 30, v) for i, v in enumerate(VALUES)],
        {"device": "greenhouse-1"},
    )
    # Another device and an old point outside the window must not count.
    influx_db.write("gro01", "temperature", [(20, 99.0)], {"device": "greenhouse-2"})
    influx_db.write("gro01", "temperature", [(3600, -50.0)], {"device": "greenhouse-1"})
    return influx_db


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("mean", statistics.mean(VALUES)),
        ("min", min(VALUES)),
        ("max", max(VALUES)),
        ("last", VALUES[0]),  # the most recent point is 10 s ago
        ("count", len(VALUES)),
        ("sum", sum(VALUES)),
        ("median", statistics.median(VALUES)),
    ],
)
def test_each_aggregation_covers_exactly_the_window_and_tags(seeded, aggregation, expected) -> None:
    assert value_of(seeded, queries.latest(definition(aggregation=aggregation))) == pytest.approx(
        expected
    )


def test_percentile_uses_influxdbs_nearest_rank(seeded) -> None:
    # nearest rank: sorted [19, 21, 24, 25, 27, 30], 90th -> index floor(6 * 0.9 + 0.5) - 1 = 4
    query = queries.latest(definition(aggregation="percentile", percentile=90))

    assert value_of(seeded, query) == 27.0


def test_no_data_in_the_window_returns_no_value(seeded) -> None:
    assert value_of(seeded, queries.latest(definition(tags={"device": "nowhere"}))) is None


@pytest.mark.parametrize(
    "tags",
    [
        {"device": "greenhouse-1' OR '1'='1"},
        {"device": 'greenhouse-1" OR "device" =~ /.*/ --'},
        {"device": "x' OR time > 0 OR 'a'='a"},
    ],
)
def test_tag_values_are_bound_and_cannot_widen_the_query(seeded, tags) -> None:
    assert value_of(seeded, queries.latest(definition(tags=tags))) is None


@pytest.mark.parametrize(
    ("overrides"),
    [
        {"measurement": 'gro01" WHERE 1=1; DROP DATABASE "x'},
        {"field": 'temperature") FROM "gro01"; DROP DATABASE "x'},
        {"tags": {"device\" = 'greenhouse-1' OR \"a": "b"}},
    ],
)
def test_identifiers_are_quoted_so_injection_only_names_something_that_does_not_exist(
    seeded, overrides
) -> None:
    query = queries.latest(definition(**overrides))

    assert value_of(seeded, query) is None
    databases = seeded.client.query("SHOW DATABASES", database=seeded.database)
    assert [seeded.database] in [list(row) for row in databases[0].series[0].values]


def test_a_quoted_identifier_with_a_quote_in_its_name_still_finds_its_series(influx_db) -> None:
    influx_db.write('odd"name', 'va"l', [(5, 3.0)], {'ta"g': "v"})

    query = queries.latest(
        definition(measurement='odd"name', field='va"l', tags={'ta"g': "v"}, aggregation="last")
    )

    assert value_of(influx_db, query) == 3.0


@pytest.mark.parametrize(
    ("window", "literal"),
    [
        (timedelta(minutes=5), "5m"),
        (timedelta(seconds=90), "90s"),
        (timedelta(hours=2), "2h"),
        (timedelta(days=1), "1d"),
        (timedelta(milliseconds=1500), "1500ms"),
    ],
)
def test_windows_become_influxql_duration_literals(window, literal) -> None:
    assert queries.influx_duration(window) == literal


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("DROP DATABASE growalert", "only SELECT"),
        ("SELECT mean(value) FROM cpu; DROP DATABASE x", "only one statement"),
        ("SELECT mean(value) INTO other FROM cpu", "INTO is not allowed"),
        ("SHOW DATABASES", "only SELECT"),
        ("select * from cpu where host = $h", "bind parameters"),
        ("DELETE FROM cpu", "only SELECT"),
    ],
)
def test_raw_queries_other_than_one_read_only_select_are_rejected(raw, message) -> None:
    with pytest.raises(InvalidQuery, match=message):
        queries.validate_raw(raw)


def test_raw_select_with_semicolons_and_keywords_inside_strings_is_allowed() -> None:
    raw = 'SELECT mean("value") FROM "cpu" WHERE "host" = \'a;DROP INTO\' AND time > now() - 5m;'

    assert queries.validate_raw(raw) == raw.rstrip(";")


def test_a_raw_select_runs_against_influxdb(seeded) -> None:
    query = queries.raw('SELECT max("temperature") FROM "gro01" WHERE time > now() - 10m')

    results = seeded.client.query(query.text, database=seeded.database)

    assert influx.points(results[0].series)[0]["max"] == 99.0


def test_display_shows_bound_values_inline() -> None:
    query = queries.latest(definition())

    assert "'greenhouse-1'" in query.display()
    assert "now() - 5m" in query.display()
