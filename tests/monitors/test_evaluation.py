"""Dry runs (POST /monitors/<id>/test) and backtests (POST /monitors/preview) against a real
InfluxDB, with expectations worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitors.evaluate import backtest
from monitors.models import Monitor, Notification, Status
from tests.factories import MonitorFactory, SourceFactory

pytestmark = pytest.mark.django_db

MINUTE_MS = 60_000


def per_minute(influx_db, values, *, end_ms, device="greenhouse-1"):
    """Point i at 30 s past minute i of the half hour ending at ``end_ms``."""
    span = len(values) * 60
    influx_db.write(
        "gro01",
        "temperature",
        [(span - (i * 60 + 30), v) for i, v in enumerate(values)],
        tags={"device": device},
        now_ms=end_ms,
    )


def test_dry_run_reports_query_value_status_and_reason_and_changes_nothing(
    alice, influx_db, api_client_for
):
    influx_db.write("gro01", "temperature", [(60, 41.0), (120, 39.0)], {"device": "greenhouse-1"})
    monitor = MonitorFactory(owner=alice, source__database=influx_db.database, critical=35)

    response = api_client_for(alice).post(f"/monitors/{monitor.pk}/test")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["value"] == 40.0
    assert body["status"] == "firing"
    assert body["previous_status"] == "ok"
    assert body["would_notify"] == ["fired"]
    assert "35" in body["reason"]
    assert body["query"].startswith('SELECT mean("temperature") AS "value" FROM "gro01"')
    assert "'greenhouse-1'" in body["query"]
    monitor.refresh_from_db()
    assert monitor.status == Status.OK
    assert monitor.state == {}
    assert not Notification.objects.exists()


def test_dry_run_on_an_unreachable_source_shows_the_error_policy(alice, api_client_for):
    source = SourceFactory(owner=alice, url="http://127.0.0.1:9", timeout_seconds=0.5)
    monitor = MonitorFactory(owner=alice, source=source, error_policy="alerting")

    body = api_client_for(alice).post(f"/monitors/{monitor.pk}/test").json()

    assert body["status"] == "firing"  # errors count as failures under "alerting"
    assert body["value"] is None
    assert "InfluxDB" in body["reason"]


def test_backtest_replays_the_state_machine_over_history(alice, influx_db):
    # Minutes 10-14 and 20-24 are hot. Evaluation k (every minute) sees minute k-1's point,
    # so evaluations 11-15 and 21-25 fail; pending_for=2 fires at 12 and 22, resolves at 16, 26.
    values = [40.0 if 10 <= i <= 14 or 20 <= i <= 24 else 20.0 for i in range(30)]
    end = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    end_ms = int(end.timestamp() * 1000)
    per_minute(influx_db, values, end_ms=end_ms)
    monitor = MonitorFactory.build(
        owner=alice,
        source=SourceFactory(owner=alice, database=influx_db.database),
        aggregation="max",
        window=timedelta(minutes=1),
        interval=timedelta(minutes=1),
        critical=35,
        pending_for=2,
    )

    result = backtest.backtest(monitor, hours=0.5, end=end).as_dict()

    start_ms = end_ms - 30 * MINUTE_MS
    assert result["error"] is None
    assert len(result["series"]) == 30
    assert len(result["evaluations"]) == 30
    moments = [((e["time"] - start_ms) // MINUTE_MS, e["kind"]) for e in result["events"]]
    assert moments == [(12, "fired"), (16, "resolved"), (22, "fired"), (26, "resolved")]
    statuses = [e["status"] for e in result["evaluations"]]
    assert statuses[10] == "pending"  # evaluation 11: first failure
    assert statuses[11:15] == ["firing"] * 4
    assert result["summary"]["fired"] == 2
    assert result["summary"]["text"] == "would have fired twice"
    assert result["summary"]["firing_seconds"] == 4 * 60 * 2


def test_preview_of_an_unsaved_definition_finds_flapping(alice, influx_db, api_client_for):
    # Hot and cool alternate every minute for an hour. With pending_for=1 it fires at every
    # odd evaluation; after 21 evaluations the state changes 100% of the time, so flapping starts
    # (on evaluation 21, which would have fired) and notifications stop: 10 fires, one flap.
    values = [40.0 if i % 2 == 0 else 20.0 for i in range(60)]
    per_minute(influx_db, values, end_ms=int(datetime.now(UTC).timestamp() * 1000))
    source = SourceFactory(owner=alice, database=influx_db.database)
    body = {
        "source": source.pk,
        "measurement": "gro01",
        "field": "temperature",
        "tags": {"device": "greenhouse-1"},
        "aggregation": "max",
        "window": "00:01:00",
        "interval": "00:01:00",
        "comparator": "above",
        "critical": 35,
        "hours": 1,
    }

    response = api_client_for(alice).post("/monitors/preview", body, format="json")

    assert response.status_code == 200, response.content
    summary = response.json()["summary"]
    assert summary["fired"] == 10
    assert summary["flapped"] == 1
    assert summary["text"] == "would have fired 10 times, flapped once"
    assert not Monitor.objects.exists()  # a preview saves nothing


def test_preview_validates_like_create(alice, api_client_for):
    response = api_client_for(alice).post("/monitors/preview", {"hours": 0}, format="json")
    assert response.status_code == 400
    assert {"source", "critical", "hours"} <= set(response.json())


@pytest.mark.parametrize(
    ("fired", "flapped", "text"),
    [
        (0, 0, "would not have fired"),
        (0, 1, "would not have fired, flapped once"),
        (1, 0, "would have fired once"),
        (2, 2, "would have fired twice, flapped twice"),
        (5, 3, "would have fired 5 times, flapped 3 times"),
    ],
)
def test_summary_text(fired, flapped, text):
    counts = {"fired": fired, "flapping_started": flapped, "resolved": 0, "warning_raised": 0}
    assert backtest._summary_text(counts) == text


@pytest.mark.parametrize(
    ("measurement", "field", "tags", "error"),
    [
        ("soil", "moisure", {}, "no field `moisure` in `soil`; fields: moisture, temp"),
        ("soyl", "moisture", {}, "no measurement `soyl` in database `"),
        (
            "soil",
            "moisture",
            {"device": "bench-9"},
            "no series of `soil` with device=bench-9; device: bench-1, bench-3",
        ),
        ("soil", "moisture", {"zone": "north"}, "no tag `zone` on `soil`"),
    ],
)
def test_an_empty_preview_says_what_the_source_does_not_have(
    alice, influx_db, api_client_for, measurement, field, tags, error
):
    for device in ("bench-1", "bench-3"):
        influx_db.write("soil", "moisture", [(60, 30.0)], {"device": device})
        influx_db.write("soil", "temp", [(60, 21.0)], {"device": device})
    source = SourceFactory(owner=alice, database=influx_db.database)
    body = {
        "source": source.pk,
        "measurement": measurement,
        "field": field,
        "tags": tags,
        "window": "00:05:00",
        "interval": "00:01:00",
        "comparator": "below",
        "critical": 20,
        "hours": 1,
    }

    response = api_client_for(alice).post("/monitors/preview", body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["error"].startswith(error)
