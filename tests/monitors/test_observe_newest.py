"""``last`` of series told apart by one tag key, asked as the window's newest raw points
(``queries.newest_points_grouped``) against a real influxd: the same value and point time as
each monitor's own last() query, and last() GROUP BY again when the points are too many for the
statement's limit or the server cannot answer that form."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from monitors.influxdb import observe, queries
from monitors.models import Monitor
from tests.factories import MonitorFactory, SourceFactory, UserFactory

pytestmark = pytest.mark.django_db


def last_monitors(influx_db, devices: list[str], **fields: Any) -> list[Monitor]:
    owner = UserFactory()
    source = SourceFactory(owner=owner, database=influx_db.database)
    made = [
        MonitorFactory(
            owner=owner,
            source=source,
            tags={"device": device},
            aggregation="last",
            window=fields.pop("window", timedelta(minutes=5)),
            **fields,
        )
        for device in devices
    ]
    return [Monitor.objects.select_related("source").get(pk=m.pk) for m in made]


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The statements of every request a batch sends."""
    sent: list[list[str]] = []
    ask = observe._ask

    def counting(source: Any, texts: list[str], params: dict[str, Any]) -> Any:
        sent.append(list(texts))
        return ask(source, texts, params)

    monkeypatch.setattr(observe, "_ask", counting)
    return sent


def assert_as_alone(monitors: list[Monitor], batch: dict[int, observe.Observation]) -> None:
    for monitor in monitors:
        alone = observe.observe(monitor)
        assert alone.error is None
        assert batch[monitor.pk].error is None
        assert batch[monitor.pk].value == alone.value, monitor.tags


def test_last_of_one_tag_key_is_asked_as_newest_points_and_answers_as_last(
    influx_db, asked
) -> None:
    for d in range(6):  # two sensors per device: the device's newest point is either one's
        a, b = {"device": f"d{d}", "sensor": "a"}, {"device": f"d{d}", "sensor": "b"}
        influx_db.write("gro01", "temperature", [(200, 1.0 + d), (40, 10.0 + d)], a)
        influx_db.write("gro01", "temperature", [(100, 2.0 + d), (20 + d, 20.0 + d)], b)
    influx_db.write("gro01", "temperature", [(500, 9.0)], {"device": "old"})  # out of the window
    influx_db.write("gro01", "humidity", [(2, 40.0)], {"device": "other"})  # no temperature
    monitors = last_monitors(influx_db, [f"d{d}" for d in range(6)] + ["old", "other", "none"])

    batch = observe.observe_batch(monitors)

    [texts] = asked
    [text] = texts
    assert "GROUP BY" not in text
    assert "LIMIT" in text
    assert '"device"::tag' in text
    assert_as_alone(monitors, batch)
    by_device = {m.tags["device"]: batch[m.pk] for m in monitors}
    assert [by_device[f"d{d}"].value for d in range(6)] == [20.0 + d for d in range(6)]
    times = [by_device[f"d{d}"].at_ms or 0 for d in range(6)]
    assert times == sorted(times, reverse=True)  # each device's own newest point: 20 + d s ago
    assert times[-1] > 0
    assert [by_device[name].no_data for name in ("old", "other", "none")] == [True] * 3


def test_points_too_many_for_the_limit_are_asked_again_grouped_and_kept_so(
    influx_db, asked
) -> None:
    dense = [(float(ago), float(ago)) for ago in range(1, 2 * observe.NEWEST_POINTS + 2)]
    influx_db.write("gro01", "temperature", dense, {"device": "busy"})  # newest: 1 s ago, 1.0
    influx_db.write("gro01", "temperature", [(3, 7.0)], {"device": "calm"})
    monitors = last_monitors(influx_db, ["busy", "calm"])

    first = observe.observe_batch(monitors)
    second = observe.observe_batch(monitors)

    assert [len(texts) for texts in asked] == [1, 1, 1]  # newest points, again grouped, grouped
    assert "LIMIT" in asked[0][0]
    assert "GROUP BY" in asked[1][0]
    assert asked[2] == asked[1]  # the kept plan's form now
    for batch in (first, second):
        assert_as_alone(monitors, batch)
        assert {m.tags["device"]: batch[m.pk].value for m in monitors} == {
            "busy": 1.0,
            "calm": 7.0,
        }


def test_a_server_that_cannot_answer_the_newest_form_is_asked_grouped(
    influx_db, asked, monkeypatch: pytest.MonkeyPatch
) -> None:
    influx_db.write("gro01", "temperature", [(3, 7.0)], {"device": "a"})
    influx_db.write("gro01", "temperature", [(5, 8.0)], {"device": "b"})
    monitors = last_monitors(influx_db, ["a", "b"])
    newest = queries.newest_points_grouped

    def unknown_to_the_server(*args: Any, **kwargs: Any) -> queries.Query:
        query = newest(*args, **kwargs)
        return queries.Query(query.text.replace("::tag", "::nosuchtype"), query.params)

    monkeypatch.setattr(queries, "newest_points_grouped", unknown_to_the_server)

    batch = observe.observe_batch(monitors)

    assert len(asked) == 2  # the batch, then the batch again as last() GROUP BY
    assert "GROUP BY" in asked[1][0]
    assert_as_alone(monitors, batch)
    assert all("GROUP BY" in s.query.text for s in observe._latest_plan(monitors)[0])


def test_other_aggregations_and_several_tag_keys_keep_last_group_by(influx_db) -> None:
    owner = UserFactory()
    source = SourceFactory(owner=owner, database=influx_db.database)
    made = [
        MonitorFactory(owner=owner, source=source, tags={"device": f"d{d}"}, aggregation="max")
        for d in range(3)
    ]
    made += [
        MonitorFactory(owner=owner, source=source, tags={"bed": "1", "zone": z}, aggregation="last")
        for z in ("north", "south")
    ]
    monitors = [Monitor.objects.select_related("source").get(pk=m.pk) for m in made]

    statements = observe._plan(monitors, {})

    assert all("GROUP BY" in s.query.text and not s.newest for s in statements)


def test_the_newest_form_refuses_what_it_cannot_answer_as_last() -> None:
    owner = UserFactory()
    source = SourceFactory(owner=owner)
    mean = MonitorFactory(owner=owner, source=source, tags={"device": "a"}, aggregation="mean")
    two = MonitorFactory(
        owner=owner, source=source, tags={"bed": "1", "zone": "n"}, aggregation="last"
    )

    for monitor in (mean, two):
        with pytest.raises(queries.InvalidQuery):
            queries.newest_points_grouped(
                monitor.definition(), [tuple(monitor.tags.values())], limit=5
            )
