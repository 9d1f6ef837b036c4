"""Fleet monitors through the API: group-by and filters with their bounds, the series list
(worst first, alice only), silencing and acknowledging one series; the OpenAPI schema
documents them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from monitors.models import Incident, SeriesState, Silence
from tests.factories import MonitorFactory, SourceFactory
from tests.monitors.test_api import monitor_body

pytestmark = pytest.mark.django_db


def fleet_body(source, **overrides):
    return monitor_body(source, **{"tags": {}, "group_by": ["device"], **overrides})


def test_a_fleet_monitor_is_created_read_and_listed_with_its_group_by(alice, api_client_for):
    source = SourceFactory(owner=alice)
    client = api_client_for(alice)
    body = fleet_body(source, series_filter={"device": ["greenhouse-*"]}, storm_threshold=25)

    created = client.post("/monitors", body, format="json")

    assert created.status_code == 201, created.json()
    data = created.json()
    assert data["group_by"] == ["device"]
    assert data["series_filter"] == {"device": ["greenhouse-*"]}
    assert data["storm_threshold"] == 25
    listed = client.get("/monitors").json()["results"]
    assert listed[0]["group_by"] == ["device"]
    single = client.post("/monitors", monitor_body(source, name="one"), format="json").json()
    assert single["group_by"] == []
    assert single["series_filter"] == {}
    assert single["storm_threshold"] is None


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"group_by": "device"}, "group_by", 'must be a list of tag keys, e.g. ["device"]'),
        ({"group_by": ["a", "b", "c", "d"]}, "group_by", "at most 3 tag keys"),
        ({"group_by": ["a", "a"]}, "group_by", "each tag key at most once"),
        ({"group_by": ["x" * 201]}, "group_by", "tag keys are at most 200 characters"),
        (
            {"series_filter": {"zone": ["a"]}},
            "series_filter",
            "'zone' is not one of the group_by tag keys",
        ),
        (
            {"series_filter": {"device": ["g*" + "x" * 100]}},
            "series_filter",
            "patterns are at most 100 characters",
        ),
        (
            {"series_filter": {"device": [str(n) for n in range(51)]}},
            "series_filter",
            "'device': at most 50 values or patterns",
        ),
        ({"series_filter": {"device": "a"}}, "series_filter", "must be an object of tag keys"),
        ({"storm_threshold": 0}, "storm_threshold", "must be between 1 and 1000"),
        ({"storm_threshold": 1001}, "storm_threshold", "must be between 1 and 1000"),
        (
            {"raw_query": "SELECT last(v) FROM m", "measurement": "", "field": ""},
            "group_by",
            "needs a structured definition (measurement and field), not raw_query",
        ),
        ({"tags": {"device": "a"}}, "group_by", "'device' is a fixed tag"),
    ],
)
def test_group_by_and_filters_are_bounded_with_clear_errors(
    alice, api_client_for, overrides, field, message
):
    source = SourceFactory(owner=alice)
    response = api_client_for(alice).post(
        "/monitors", fleet_body(source, **overrides), format="json"
    )
    assert response.status_code == 400, response.json()
    assert any(message in text for text in response.json()[field]), response.json()


def test_a_filter_needs_a_group_by(alice, api_client_for):
    source = SourceFactory(owner=alice)
    body = monitor_body(source, series_filter={"device": ["a"]})
    response = api_client_for(alice).post("/monitors", body, format="json")
    assert response.status_code == 400
    assert response.json()["series_filter"] == ["needs group_by"]


def _series(monitor, key, status, value):
    device = key.split("=")[1]
    return SeriesState.objects.create(
        monitor=monitor, key=key, tags={"device": device}, status=status, last_value=value
    )


def test_the_series_list_is_worst_first_filterable_and_the_owners_alone(alice, bob, api_client_for):
    monitor = MonitorFactory(owner=alice, tags={}, group_by=["device"])
    _series(monitor, "device=a", "ok", 20.0)
    _series(monitor, "device=b", "firing", 41.0)
    _series(monitor, "device=c", "pending", 36.0)
    _series(monitor, "device=d", "no_data", None)
    client = api_client_for(alice)

    page = client.get(f"/monitors/{monitor.pk}/series")

    assert page.status_code == 200
    rows = page.json()["results"]
    assert [r["key"] for r in rows] == ["device=b", "device=d", "device=c", "device=a"]
    assert rows[0] == {
        "key": "device=b",
        "tags": {"device": "b"},
        "status": "firing",
        "status_reason": "",
        "status_changed_at": None,
        "last_value": 41.0,
        "last_evaluated_at": None,
        "silenced": False,
        "incident": None,
        "acknowledged": False,
    }
    firing = client.get(f"/monitors/{monitor.pk}/series?status=firing,pending").json()
    assert [r["key"] for r in firing["results"]] == ["device=b", "device=c"]
    assert api_client_for(bob).get(f"/monitors/{monitor.pk}/series").status_code == 404


def test_one_series_is_silenced_through_the_api(alice, bob, api_client_for):
    monitor = MonitorFactory(owner=alice, tags={}, group_by=["device"])
    _series(monitor, "device=a", "firing", 41.0)
    _series(monitor, "device=b", "firing", 41.0)
    client = api_client_for(alice)
    ends = (timezone.now() + timedelta(hours=1)).isoformat()

    created = client.post(
        "/silences",
        {"monitor": monitor.pk, "series_key": "device=a", "ends_at": ends},
        format="json",
    )

    assert created.status_code == 201, created.json()
    assert Silence.objects.get().series_key == "device=a"
    rows = client.get(f"/monitors/{monitor.pk}/series").json()["results"]
    assert {r["key"]: r["silenced"] for r in rows} == {"device=a": True, "device=b": False}
    alone = client.post("/silences", {"series_key": "device=a", "ends_at": ends}, format="json")
    assert alone.status_code == 400
    assert "give monitor too" in alone.json()["series_key"][0]
    theirs = api_client_for(bob).post(
        "/silences",
        {"monitor": monitor.pk, "series_key": "device=a", "ends_at": ends},
        format="json",
    )
    assert theirs.status_code == 400
    assert "monitor" in theirs.json()


def test_each_series_shows_its_open_incident_and_acknowledging_one_leaves_the_others(
    alice, bob, api_client_for
):
    monitor = MonitorFactory(owner=alice, tags={}, group_by=["device"])
    for key in ("device=a", "device=b"):
        _series(monitor, key, "firing", 41.0)
    _series(monitor, "device=c", "ok", 20.0)
    now = timezone.now()
    a, b = (
        Incident.objects.create(monitor=monitor, series_key=key, opened_at=now)
        for key in ("device=a", "device=b")
    )
    Incident.objects.create(  # a resolved one is not the series' incident any more
        monitor=monitor, series_key="device=c", opened_at=now, resolved_at=now
    )
    client = api_client_for(alice)

    listed = client.get(f"/monitors/{monitor.pk}/series").json()["results"]
    assert {r["key"]: r["incident"] for r in listed} == {
        "device=a": a.pk,
        "device=b": b.pk,
        "device=c": None,
    }
    assert api_client_for(bob).post(f"/incidents/{a.pk}/acknowledge").status_code == 404
    acked = client.post(f"/incidents/{a.pk}/acknowledge")

    assert acked.status_code == 200
    assert acked.json()["acknowledged_now"] is True
    rows = {r["key"]: r for r in client.get(f"/monitors/{monitor.pk}/series").json()["results"]}
    assert {k: r["acknowledged"] for k, r in rows.items()} == {
        "device=a": True,
        "device=b": False,
        "device=c": False,
    }
    b.refresh_from_db()
    assert b.acknowledged_at is None


def test_the_schema_documents_the_series_and_the_fleet_fields(client):
    schema = client.get("/api/schema").content
    assert b"/monitors/{id}/series" in schema
    assert b"group_by" in schema
    assert b"series_filter" in schema
    assert b"series_key" in schema


def test_the_schema_lists_the_series_a_fleet_definition_matches_now(
    alice, bob, api_client_for, influx_db
):
    source = SourceFactory(owner=alice, database=influx_db.database)
    lines = [
        "gro01,device=greenhouse\\ 1,zone=a temperature=20",
        "gro01,device=greenhouse-2,zone=a temperature=21",
        "gro01,device=greenhouse-2,zone=b temperature=21",
        "gro01,device=shed,zone=a temperature=19",
        "gro01,zone=a temperature=19",  # no device tag: no series of a device
        "other,device=barn temperature=18",
    ]
    influx_db.client.write(lines, database=influx_db.database)
    client = api_client_for(alice)
    url = f"/sources/{source.pk}/schema?measurement=gro01"

    by_device = client.get(url + "&group_by=device").json()["series"]
    assert by_device == {
        "matched": 3,
        "series": [
            {"key": "device=greenhouse 1", "label": "greenhouse 1"},
            {"key": "device=greenhouse-2", "label": "greenhouse-2"},
            {"key": "device=shed", "label": "shed"},
        ],
        "complete": True,
    }
    pattern = json.dumps({"device": ["greenhouse-*"]})
    narrowed = client.get(url + f"&group_by=device,zone&series_filter={pattern}").json()["series"]
    assert [s["label"] for s in narrowed["series"]] == ["greenhouse-2 / a", "greenhouse-2 / b"]
    fixed = client.get(url + '&group_by=device&tags={"zone": "b"}').json()["series"]
    assert [s["key"] for s in fixed["series"]] == ["device=greenhouse-2"]
    assert "series" not in client.get(url).json()  # without group_by: suggestions only

    bad = client.get(url + '&group_by=device&series_filter={"zone": ["a"]}')
    assert bad.status_code == 400
    assert bad.json()["series_filter"] == ["'zone' is not one of the group_by tag keys"]
    assert client.get(url + "&group_by=device&series_filter=nope").status_code == 400
    assert api_client_for(bob).get(url + "&group_by=device").status_code == 404
