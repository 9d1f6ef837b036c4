"""A batch's one InfluxDB request answers each monitor exactly as its own query would.

Monitors that differ only in tag values share grouped statements (GROUP BY their tag keys);
these tests compare every observation of a mixed batch with the monitor's single-series query
run on its own, against a real influxd.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitors.influxdb import observe, queries
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
    assert sum(len(s.monitors) for s in statements) == len(monitors)
    assert all("GROUP BY" in s.query.text for s in grouped)
    # one tag key: the batch's 27 devices of the 5 min mean in one statement, one regex
    [devices] = [s for s in grouped if s.keys == ("device",) and len(s.rows) > 20]
    assert len(devices.rows) == 27
    assert '"device" =~ $' in devices.query.text
    assert " OR " not in devices.query.text
    # several tag keys: OR terms, at most GROUP_SIZE a statement
    several = [s for s in grouped if len(s.keys) > 1]
    assert several
    assert all(" OR " in s.query.text and len(s.rows) <= observe.GROUP_SIZE for s in several)


# Tag values a regular expression could mistake: prefixes of one another, metacharacters, the
# regex delimiter, backslashes, quotes, spaces, non-ASCII.
AWKWARD = [
    "dev-1",
    "dev-10",
    "dev-1x",
    "xdev-1",
    "dev.1",
    "devA1",
    "a|b",
    "a",
    "(x)",
    "[y]",
    "s*",
    "ss",
    "q?",
    "p+",
    "^c$",
    "c",
    "back\\slash",
    "sl/ash",
    "it's",
    'say "hi"',
    "two words",
    "serre-été-🌱",
    "{2}",
    "$",
    "-",
]


def test_one_regular_expression_picks_exactly_each_monitors_series(influx_db) -> None:
    for n, value in enumerate(AWKWARD):
        points = [(30, float(n)), (60, 100.0 + n)]
        influx_db.write("gro01", "temperature", points, {"device": value})
    owner = UserFactory()
    source = SourceFactory(owner=owner, database=influx_db.database)
    made = [
        MonitorFactory(owner=owner, source=source, tags={"device": value}, aggregation=aggregation)
        for value in [*AWKWARD, "nowhere", "dev-"]
        for aggregation in ("mean", "last", "count")
    ]
    monitors = [Monitor.objects.select_related("source").get(pk=m.pk) for m in made]

    batch = observe.observe_batch(monitors)

    assert len([s for s in observe._plan(monitors, {}) if s.keys]) == 3  # one per aggregation
    for monitor in monitors:
        alone = observe.observe(monitor)
        assert alone.error is None
        assert batch[monitor.pk].error is None
        assert batch[monitor.pk].value == alone.value, monitor.tags
    by = {(m.tags["device"], m.aggregation): batch[m.pk].value for m in monitors}
    assert by[("dev-1", "count")] == 2  # its own two points: not dev-10's, dev.1's or xdev-1's
    assert by[("sl/ash", "last")] == AWKWARD.index("sl/ash")  # the newer of its points
    assert by[("nowhere", "mean")] is None
    assert by[("dev-", "count")] is None


def test_match_any_escapes_every_metacharacter() -> None:
    assert queries.match_any(["a.b", "c|d", "e"]) == "^(?:a\\.b|c\\|d|e)$"
    assert queries.match_any(["été/1"]) == "^(?:été\\/1)$"


def counting_plans(monkeypatch) -> list[int]:
    """Counts the batches ``_plan`` is asked to plan (the plans' cache misses)."""
    planned: list[int] = []
    plan = observe._plan

    def counted(monitors, params, *args, **kwargs):
        planned.append(len(monitors))
        return plan(monitors, params, *args, **kwargs)

    monkeypatch.setattr(observe, "_plan", counted)
    return planned


def test_a_batch_of_the_same_monitors_is_planned_once(series, monkeypatch) -> None:
    """A worker gets the same batch of kept monitors every tick, their rows in any order."""
    observe.forget_plans()
    planned = counting_plans(monkeypatch)
    monitors = monitors_for(series)

    first = observe.observe_batch(monitors)
    again = observe.observe_batch(list(reversed(monitors)))

    assert planned == [len(monitors)]
    assert {pk: o.value for pk, o in again.items()} == {pk: o.value for pk, o in first.items()}


def test_an_edited_monitor_is_planned_again_with_its_new_series(series, monkeypatch) -> None:
    """An edit reloads the row as a new instance (``evaluate.resident``): a new plan."""
    observe.forget_plans()
    planned = counting_plans(monkeypatch)
    monitors = monitors_for(series)
    observe.observe_batch(monitors)
    edited = monitors[0]
    Monitor.objects.filter(pk=edited.pk).update(tags={"device": "dev-29"})
    reloaded = Monitor.objects.select_related("source").get(pk=edited.pk)

    batch = observe.observe_batch([reloaded, *monitors[1:]])

    assert len(planned) == 2
    assert batch[edited.pk].value == observe.observe(reloaded).value == pytest.approx(44.5)


def test_the_kept_plans_hold_a_bounded_number_of_monitors(series, monkeypatch) -> None:
    observe.forget_plans()
    monkeypatch.setattr(observe, "PLANNED_MONITORS", 20)
    planned = counting_plans(monkeypatch)
    monitors = monitors_for(series)
    batches = [monitors[start : start + 8] for start in range(0, 24, 8)]

    for batch in batches:
        observe.observe_batch(batch)
    observe.observe_batch(batches[0])  # the oldest, dropped for the third: planned again

    assert observe._planned_count <= 20
    assert len(planned) == 4
    assert list(observe._plans)[-1] == tuple(sorted(map(id, batches[0])))
