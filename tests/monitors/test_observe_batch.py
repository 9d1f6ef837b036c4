"""A batch's one InfluxDB request answers each monitor exactly as its own query would.

Monitors that differ only in tag values share grouped statements (GROUP BY their tag keys);
these tests compare every observation of a mixed batch with the monitor's single-series query
run on its own, against a real influxd.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitors.influxdb import observe
from monitors.models import Monitor
from tests.factories import MonitorFactory, SourceFactory, UserFactory

pytestmark = pytest.mark.django_db

INJECTION = "x' OR \"device\" =~ /.*/ OR 'a'='a"


@pytest.fixture
def series(influx_db):
    """30 devices, two sensors each (a query on the device aggregates both), a device whose
    name tries to widen the query, readings with two tag keys, and a string field."""
    for d in range(30):
        for sensor, offset in (("a", 0.0), ("b", 1.0)):
            influx_db.write(
                "gro01",
                "temperature",
                [(30, 20.0 + d + offset), (90, 10.0 + d + offset), (900, 99.0)],
                {"device": f"dev-{d}", "sensor": sensor},
            )
    influx_db.write("gro01", "temperature", [(30, 55.0)], {"device": INJECTION})
    influx_db.write("soil", "moisture", [(20, 0.3)], {"bed": "1", "zone": "north"})
    influx_db.write("soil", "moisture", [(20, 0.6)], {"bed": "1", "zone": "south"})
    influx_db.client.write(
        ['labels,device=dev-1 label="fine"', 'labels,device=dev-2 label="odd"'],
        database=influx_db.database,
    )
    return influx_db


def monitors_for(influx_db) -> list[Monitor]:
    owner = UserFactory()
    source = SourceFactory(owner=owner, database=influx_db.database)

    def make(**fields: object) -> Monitor:
        return MonitorFactory(owner=owner, source=source, **fields)

    made = [make(tags={"device": f"dev-{d}"}) for d in range(25)]  # 3 grouped statements
    made += [make(tags={"device": "dev-3"})]  # the same series twice
    made += [make(tags={"device": "nowhere"})]  # no data
    made += [make(tags={"device": INJECTION})]
    made += [make(tags={"device": f"dev-{d}"}, aggregation="count") for d in (1, 2)]
    made += [
        make(tags={"device": f"dev-{d}"}, aggregation="percentile", percentile=90) for d in (4, 5)
    ]
    made += [make(tags={"device": f"dev-{d}"}, window=timedelta(minutes=20)) for d in (6, 7)]
    made += [make(tags={"device": "dev-8", "sensor": "b"}, aggregation="max")]
    made += [make(tags={"device": "dev-9", "sensor": "a"}, aggregation="max")]
    made += [
        make(measurement="soil", field="moisture", tags={"bed": "1", "zone": z})
        for z in ("north", "south", "east")
    ]
    made += [make(tags={})]  # the whole measurement: its own statement
    made += [make(raw_query='SELECT last("temperature") FROM "gro01"', tags={})]
    made += [make(measurement="labels", field="label", tags={"device": f"dev-{d}"}) for d in (1, 2)]
    return [Monitor.objects.select_related("source").get(pk=m.pk) for m in made]


def test_a_mixed_batch_observes_each_monitor_as_its_own_query_does(series) -> None:
    monitors = monitors_for(series)

    batch = observe.observe_batch(monitors)

    for monitor in monitors:
        alone = observe.observe(monitor)
        got = batch[monitor.pk]
        assert got.value == alone.value, monitor.tags
        assert (got.error is None) == (alone.error is None), monitor.tags
        shown = observe.shown_query(monitor, got)  # what /test and notifications show
        assert shown == observe.shown_query(monitor, alone)
    by_tags = {tuple(sorted(m.tags.items())): batch[m.pk] for m in monitors if m.field != "label"}
    # dev-3 over 5 min: sensor a 23 and 13, sensor b 24 and 14 (the 900 s old 99s are out)
    assert by_tags[(("device", "dev-3"),)].value == pytest.approx(18.5)
    assert by_tags[(("device", "nowhere"),)].no_data
    assert by_tags[(("device", INJECTION),)].value == 55.0  # its own series, nothing wider
    assert by_tags[(("bed", "1"), ("zone", "east"))].no_data
    labels = [batch[m.pk] for m in monitors if m.field == "label"]
    assert all(o.error is not None for o in labels)  # mean of a string: only they fail


def test_monitors_sharing_a_definition_share_statements(series) -> None:
    monitors = monitors_for(series)

    statements = observe._plan(monitors, {})

    grouped = [s for s in statements if s.keys]
    assert len(statements) < len(monitors) / 2
    assert max(len(s.rows) for s in grouped) == observe.GROUP_SIZE
    assert sum(len(s.monitors) for s in statements) == len(monitors)
    assert all("GROUP BY" in s.query.text for s in grouped)
