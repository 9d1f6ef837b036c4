"""The dashboard reads its charts with one InfluxDB request per source (a real influxd), and
each chart shows the points its monitor's own history query returns."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from growalert.pages import charts, data
from growalert.pages.views import DASHBOARD_CHART_HOURS
from monitors.influxdb import client as influx
from monitors.influxdb import observe
from monitors.models import Monitor
from tests.factories import MonitorFactory, SourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def influx_requests(monkeypatch) -> Counter[str]:
    """Every HTTP request the InfluxDB client sends, counted by path."""
    sent: Counter[str] = Counter()
    send = influx._request

    def counting(client: Any, method: str, path: str, **kwargs: Any) -> Any:
        sent[path] += 1
        return send(client, method, path, **kwargs)

    monkeypatch.setattr(influx, "_request", counting)
    return sent


def seed(influx_db) -> None:
    """12 devices with two sensors each, soil beds with two tag keys, a string field."""
    for d in range(12):
        for sensor, offset in (("a", 0.0), ("b", 0.5)):
            influx_db.write(
                "gro01",
                "temperature",
                [(ago, 20.0 + d + offset + ago / 600) for ago in range(60, 3600, 300)],
                {"device": f"dev-{d}", "sensor": sensor},
            )
        influx_db.write(
            "gro01", "humidity", [(120, 60.0 + d), (2400, 61.0 + d)], {"device": f"dev-{d}"}
        )
    for zone in ("north", "south"):
        influx_db.write("soil", "moisture", [(300, 0.3), (900, 0.4)], {"bed": "1", "zone": zone})
    influx_db.write("gro01", "temperature", [(7200, 99.0)], {"device": "dev-1", "sensor": "a"})
    influx_db.client.write(['labels,device=dev-1 label="fine"'], database=influx_db.database)


def dashboard_monitors(owner, influx_db, other_db) -> list[Monitor]:
    farm = SourceFactory(owner=owner, name="farm", database=influx_db.database)
    other = SourceFactory(owner=owner, name="other", database=other_db.database)

    def make(source=farm, **fields: Any) -> Monitor:
        return MonitorFactory(owner=owner, source=source, **fields)

    made = [make(tags={"device": f"dev-{d}"}) for d in range(12)]  # two grouped statements
    made += [make(tags={"device": f"dev-{d}"}, aggregation="max") for d in range(3)]  # same series
    made += [make(tags={"device": f"dev-{d}", "sensor": "b"}) for d in range(4)]
    made += [make(field="humidity", tags={"device": f"dev-{d}"}) for d in range(6)]
    made += [make(measurement="soil", field="moisture", tags={"bed": "1", "zone": z})
             for z in ("north", "south", "east")]  # fmt: skip
    made += [make(tags={"device": "nowhere"}), make(tags={})]
    made += [make(raw_query='SELECT last("temperature") FROM "gro01"', tags={})]
    made += [make(measurement="labels", field="label", tags={"device": "dev-1"})]
    made += [make(source=other, tags={"device": f"dev-{d}"}) for d in range(8)]
    return made


@pytest.fixture
def other_db(influx_db):
    """A second database on the same influxd, for a second source."""
    name = f"{influx_db.database}_b"
    influx_db.client.create_database(name)
    yield type(influx_db)(influx_db.client, name)
    influx_db.client.query(
        f"DROP DATABASE {influx.quote_ident(name)}", database=name, method="POST"
    )


def test_the_dashboard_asks_influxdb_once_per_source(
    client_for, alice, influx_db, other_db, influx_requests
) -> None:
    seed(influx_db)
    for d in range(8):
        other_db.write(
            "gro01", "temperature", [(60, 5.0 + d), (1800, 6.0 + d)], {"device": f"dev-{d}"}
        )
    monitors = dashboard_monitors(alice, influx_db, other_db)
    assert len(monitors) == 40

    with time_machine.travel(timezone.now(), tick=False):
        end = timezone.now()
        alone: dict[int, list[tuple[int, float]]] = {}
        for monitor in Monitor.objects.select_related("source").filter(owner=alice):
            if monitor.raw_query:
                alone[monitor.pk] = []
                continue
            times, values = observe.history(
                monitor, start=end - timedelta(hours=DASHBOARD_CHART_HOURS), end=end
            )
            alone[monitor.pk] = list(zip(times, values, strict=True))
        asked_alone = influx_requests["/query"]
        influx_requests.clear()

        response = client_for(alice).get("/app/")
        start, end_ms = charts.window(DASHBOARD_CHART_HOURS)

    assert response.status_code == 200
    assert asked_alone == 39  # the old way: one request per chart (a raw query has none)
    assert influx_requests["/query"] == 2  # now: one per source
    rows = {row["monitor"].pk: row for row in response.context["rows"]}
    assert set(rows) == set(alone)
    for pk, points in alone.items():
        monitor = rows[pk]["monitor"]
        expected = charts.render(
            charts.Chart(
                points=points,
                lines=data.threshold_lines(monitor),
                title=f"{monitor.name}, last {DASHBOARD_CHART_HOURS:g} h",
                width=300,
                height=90,
                unit=monitor.unit,
                decimals=monitor.precision,
                start=start,
                end=end_ms,
            )
        )
        assert rows[pk]["chart"] == expected, monitor.tags
    by_tags = {
        (m.source.name, m.field, tuple(sorted(m.tags.items()))): alone[m.pk] for m in monitors
    }
    # dev-1, one hour: 12 readings of each sensor (the one two hours old is out)
    assert len(by_tags[("farm", "temperature", (("device", "dev-1"),))]) == 24
    assert len(by_tags[("farm", "temperature", (("device", "dev-1"), ("sensor", "b")))]) == 12
    assert len(by_tags[("other", "temperature", (("device", "dev-7"),))]) == 2
    assert by_tags[("farm", "moisture", (("bed", "1"), ("zone", "east")))] == []
    assert by_tags[("farm", "label", (("device", "dev-1"),))] == []  # a string: nothing to chart


def test_a_source_that_does_not_answer_leaves_only_its_charts_empty(
    client_for, alice, influx_db, influx_requests
) -> None:
    seed(influx_db)
    farm = SourceFactory(owner=alice, name="farm", database=influx_db.database)
    down = SourceFactory(owner=alice, name="down", url="http://127.0.0.1:9", timeout_seconds=0.5)
    fine = [MonitorFactory(owner=alice, source=farm, tags={"device": f"dev-{d}"}) for d in range(3)]
    dead = [MonitorFactory(owner=alice, source=down, tags={"device": f"dev-{d}"}) for d in range(3)]

    found = data.recent_points([*fine, *dead], hours=1)

    assert influx_requests["/query"] == 2
    assert all(len(found[m.pk]) == 24 for m in fine)
    assert all(found[m.pk] == [] for m in dead)
