"""The monitors API at its documented paths, with alice (owner), bob (another customer) and an
anonymous client on every endpoint."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitors.influxdb import client as influx
from monitors.models import Monitor, Source
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory, UserFactory

pytestmark = pytest.mark.django_db


def monitor_body(source: Source, **overrides) -> dict[str, object]:
    body = {
        "name": "greenhouse too hot",
        "source": source.pk,
        "measurement": "gro01",
        "field": "temperature",
        "tags": {"device": "greenhouse-1"},
        "aggregation": "mean",
        "window": "00:05:00",
        "comparator": "above",
        "critical": 30,
        "warning": 27,
        "interval": "00:01:00",
    }
    body.update(overrides)
    return body


def test_owner_creates_and_reads_a_monitor(alice, api_client_for) -> None:
    source = SourceFactory(owner=alice)
    channel = ChannelFactory(owner=alice)
    client = api_client_for(alice)

    created = client.post("/monitors", monitor_body(source, channels=[channel.pk]), format="json")

    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "ok"
    assert body["channels"] == [channel.pk]
    fetched = client.get(f"/monitors/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["tags"] == {"device": "greenhouse-1"}


def test_list_is_paginated_scoped_to_the_owner_and_filterable_by_status(
    alice, bob, api_client_for
) -> None:
    MonitorFactory.create_batch(3, owner=alice)
    MonitorFactory(owner=alice, status="firing")
    MonitorFactory(owner=bob)

    everything = api_client_for(alice).get("/monitors")
    firing = api_client_for(alice).get("/monitors?status=firing")
    page = api_client_for(alice).get("/monitors?limit=2")

    assert everything.json()["count"] == 4
    assert [m["status"] for m in firing.json()["results"]] == ["firing"]
    assert len(page.json()["results"]) == 2
    assert page.json()["next"]


def test_a_page_lists_each_monitors_channels_in_a_fixed_number_of_queries(
    alice, api_client_for, django_assert_max_num_queries
) -> None:
    first, second = ChannelFactory(owner=alice), ChannelFactory(owner=alice)
    for i in range(30):
        monitor = MonitorFactory(owner=alice, name=f"m{i:02d}")
        monitor.channels.set([second, first] if i % 2 else [])
    client = api_client_for(alice)

    # token, the subscription check, and the page with its total: not one per monitor
    with django_assert_max_num_queries(3):
        page = client.get("/monitors?limit=30").json()["results"]

    assert [m["channels"] for m in page[:2]] == [[], sorted([first.pk, second.pk])]
    assert all(m["next_due_at"] for m in page)


def test_put_and_patch_update_a_monitor_and_reset_its_state_on_a_new_definition(
    alice, api_client_for
) -> None:
    monitor = MonitorFactory(owner=alice, status="firing", state={"status": "firing"})
    client = api_client_for(alice)

    patched = client.patch(f"/monitors/{monitor.pk}", {"name": "renamed"}, format="json")
    monitor.refresh_from_db()
    assert patched.status_code == 200
    assert monitor.status == "firing"  # a rename keeps the state

    put = client.put(
        f"/monitors/{monitor.pk}", monitor_body(monitor.source, critical=35), format="json"
    )
    monitor.refresh_from_db()
    assert put.status_code == 200
    assert monitor.critical == 35
    assert monitor.status == "ok"
    assert monitor.state["reason"] == "definition changed"  # afresh
    assert monitor.state["failures"] == 0


def test_delete_removes_the_monitor(alice, api_client_for) -> None:
    monitor = MonitorFactory(owner=alice)

    response = api_client_for(alice).delete(f"/monitors/{monitor.pk}")

    assert response.status_code == 204
    assert not Monitor.objects.filter(pk=monitor.pk).exists()


@pytest.mark.parametrize(
    ("method", "path_suffix"),
    [("get", ""), ("put", ""), ("patch", ""), ("delete", ""), ("post", "/test")],
)
def test_another_customers_monitor_is_a_404(
    alice, bob, api_client_for, method, path_suffix
) -> None:
    monitor = MonitorFactory(owner=alice)

    response = getattr(api_client_for(bob), method)(
        f"/monitors/{monitor.pk}{path_suffix}", {}, format="json"
    )

    assert response.status_code == 404
    assert Monitor.objects.filter(pk=monitor.pk, name=monitor.name).exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/monitors"),
        ("post", "/monitors"),
        ("get", "/monitors/1"),
        ("put", "/monitors/1"),
        ("delete", "/monitors/1"),
        ("post", "/monitors/1/test"),
        ("post", "/monitors/preview"),
        ("get", "/sources"),
        ("get", "/channels"),
        ("get", "/incidents"),
        ("get", "/silences"),
    ],
)
def test_anonymous_clients_are_refused(api_client_for, method, path) -> None:
    response = getattr(api_client_for(None), method)(path, {}, format="json")

    assert response.status_code in (401, 403)
    assert "detail" in response.json()


def test_a_monitor_cannot_use_another_customers_source_or_channel(
    alice, bob, api_client_for
) -> None:
    bobs_source = SourceFactory(owner=bob)
    bobs_channel = ChannelFactory(owner=bob)

    response = api_client_for(alice).post(
        "/monitors", monitor_body(bobs_source, channels=[bobs_channel.pk]), format="json"
    )

    assert response.status_code == 400
    assert set(response.json()) == {"source", "channels"}


def test_validation_errors_name_each_bad_field(alice, api_client_for) -> None:
    source = SourceFactory(owner=alice)
    body = monitor_body(
        source,
        aggregation="p99",
        comparator="above",
        critical=30,
        warning=31,
        interval="00:00:00.500000",
        tags={"device": 5},
        pending_for=0,
    )

    response = api_client_for(alice).post("/monitors", body, format="json")

    assert response.status_code == 400
    assert set(response.json()) >= {"aggregation", "interval", "tags", "pending_for"}


def test_range_comparators_need_both_bounds_and_warnings_must_trip_first(
    alice, api_client_for
) -> None:
    source = SourceFactory(owner=alice)
    client = api_client_for(alice)

    outside = client.post(
        "/monitors", monitor_body(source, comparator="outside", warning=None), format="json"
    )
    warning = client.post("/monitors", monitor_body(source, warning=31), format="json")

    assert outside.json() == {"critical_high": ["required for the outside comparator"]}
    assert warning.json() == {"warning": ["must be below critical (30.0)"]}


def test_a_raw_query_that_is_not_a_single_select_is_rejected_with_a_clear_error(
    alice, api_client_for
) -> None:
    source = SourceFactory(owner=alice)
    body = monitor_body(source, raw_query="SELECT mean(value) FROM cpu; DROP DATABASE growalert")

    response = api_client_for(alice).post("/monitors", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"raw_query": ["only one statement is allowed (found ';')"]}


def test_a_raw_query_replaces_measurement_and_field(alice, api_client_for) -> None:
    source = SourceFactory(owner=alice)
    body = monitor_body(source, measurement="", field="", raw_query="SELECT last(x) FROM y")

    response = api_client_for(alice).post("/monitors", body, format="json")

    assert response.status_code == 201


def test_source_secrets_are_write_only_and_encrypted_at_rest(alice, api_client_for) -> None:
    client = api_client_for(alice)

    created = client.post(
        "/sources",
        {
            "name": "prod",
            "url": "http://93.184.216.34:8086",  # public: saved, never called here
            "database": "farm",
            "auth_scheme": "token",
            "secret": "s3cr3t-token-value",
        },
        format="json",
    )

    assert created.status_code == 201, created.json()
    assert "s3cr3t" not in created.content.decode()
    assert created.json()["has_secret"] is True
    source = Source.objects.get(pk=created.json()["id"])
    assert "s3cr3t" not in source.secret_ciphertext
    assert source.secret == "s3cr3t-token-value"
    assert "s3cr3t" not in client.get(f"/sources/{source.pk}").content.decode()


def test_token_auth_without_a_secret_is_rejected(alice, api_client_for) -> None:
    response = api_client_for(alice).post(
        "/sources",
        {
            "name": "prod",
            "url": "http://93.184.216.34:8086",  # public: saved, never called here
            "database": "farm",
            "auth_scheme": "token",
        },
        format="json",
    )

    assert response.json() == {"secret": ["token auth needs a secret"]}


def test_checking_a_source_records_whether_it_is_reachable(alice, api_client_for) -> None:
    up = SourceFactory(owner=alice)
    down = SourceFactory(owner=alice, url="http://127.0.0.1:9", timeout_seconds=1)
    client = api_client_for(alice)

    up_result = client.post(f"/sources/{up.pk}/check").json()
    down_result = client.post(f"/sources/{down.pk}/check").json()

    assert up_result["last_check_ok"] is True
    assert up_result["server_version"].startswith("1.")
    assert down_result["last_check_ok"] is False
    assert down_result["last_check_error"] == influx.CONNECT_FAILED


def test_a_source_in_use_cannot_be_deleted(alice, api_client_for) -> None:
    monitor = MonitorFactory(owner=alice)

    response = api_client_for(alice).delete(f"/sources/{monitor.source.pk}")

    assert response.status_code == 400
    assert response.json() == {"detail": "monitors still use this source"}


def test_token_authentication_works_for_api_clients(alice, client) -> None:
    from accounts.services import api_token_create

    _, token = api_token_create(owner=alice, name="script")
    MonitorFactory(owner=alice)

    response = client.get("/monitors", HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_the_openapi_schema_and_docs_page_are_served(client) -> None:
    schema = client.get("/api/schema")
    docs = client.get("/api/docs")

    assert schema.status_code == 200
    assert b"/monitors/{id}/test" in schema.content
    assert docs.status_code == 200


def test_monitors_need_an_active_subscription(api_client_for) -> None:
    unpaid = UserFactory(username="unpaid")
    client = api_client_for(unpaid)

    listed = client.get("/monitors")
    created = client.post("/monitors", {"name": "x"}, format="json")

    assert listed.status_code == 402
    assert created.status_code == 402
    assert "active subscription" in listed.json()["detail"]


def test_each_listed_monitor_reads_exactly_as_its_own_page(alice, api_client_for) -> None:
    """GET /monitors reads rows with one SQL statement, not through model instances: every
    item must equal GET /monitors/<id>, field for field, whatever the monitor holds."""
    from django.utils import timezone

    first, second = ChannelFactory(owner=alice), ChannelFactory(owner=alice)
    now = timezone.now()
    plain = MonitorFactory(owner=alice, name="a plain")
    full = MonitorFactory(
        owner=alice,
        name="b full",
        description='démo ✓ "quoted"',
        tags={"device": "gh-2", "zone": "nörd"},
        aggregation="percentile",
        percentile=95.5,
        comparator="outside",
        critical=10,
        critical_high=35.25,
        warning=12,
        warning_high=30,
        window=timedelta(days=1, hours=2, seconds=3),
        repeat_every=timedelta(minutes=5),
        pending_for=3,
        status="firing",
        status_reason="mean 36.2 above 35.25",
        status_changed_at=now,
        last_value=36.2,
        last_evaluated_at=now,
    )
    full.channels.set([second, first])
    raw = MonitorFactory(
        owner=alice, name="c raw", raw_query='SELECT mean("t") FROM "m" WHERE $timeFilter'
    )
    paused = MonitorFactory(owner=alice, name="d paused", enabled=False, recovery=25)
    client = api_client_for(alice)

    listed = client.get("/monitors").json()

    assert [m["name"] for m in listed["results"]] == ["a plain", "b full", "c raw", "d paused"]
    for item in listed["results"]:
        assert item == client.get(f"/monitors/{item['id']}").json()
    by_name = {m["name"]: m for m in listed["results"]}
    assert by_name["b full"]["channels"] == sorted([first.pk, second.pk])
    assert by_name["d paused"]["next_due_at"] is None
    assert by_name["a plain"]["next_due_at"]
    assert by_name["a plain"]["channels"] == []
    assert {plain.pk, full.pk, raw.pk, paused.pk} == {m["id"] for m in listed["results"]}


def test_pages_count_links_and_filters_like_drfs_limit_offset(alice, bob, api_client_for) -> None:
    for i in range(5):
        MonitorFactory(owner=alice, name=f"m{i}", status="firing" if i % 2 else "ok")
    MonitorFactory(owner=bob, name="m-bob")
    client = api_client_for(alice)

    second = client.get("/monitors?limit=2&offset=2").json()
    past_end = client.get("/monitors?limit=2&offset=10").json()
    two_statuses = client.get("/monitors?status=firing,ok&limit=1").json()
    none = client.get("/monitors?status=paused").json()

    assert second["count"] == 5
    assert [m["name"] for m in second["results"]] == ["m2", "m3"]
    assert "offset=4" in second["next"]
    assert "offset=0" not in second["previous"]
    assert past_end == {"count": 5, "next": None, "previous": past_end["previous"], "results": []}
    assert two_statuses["count"] == 5
    assert len(two_statuses["results"]) == 1
    assert none == {"count": 0, "next": None, "previous": None, "results": []}
    # Malformed parameters are refused, naming them (shared/pagination.py), not ignored.
    bad = client.get("/monitors?limit=abc&offset=-3")
    assert bad.status_code == 400
    assert set(bad.json()) == {"limit"}


@pytest.mark.parametrize(
    ("pending_for", "interval", "checks"),
    [("10m", "00:01:00", 11), ("90s", "30", 4), (3, "00:01:00", 3), ("2", None, 2)],
)
def test_pending_for_takes_a_duration_like_the_editor_or_a_number_of_checks(
    alice, api_client_for, pending_for, interval, checks
) -> None:
    source = SourceFactory(owner=alice)
    body = monitor_body(source, pending_for=pending_for)
    if interval is not None:
        body["interval"] = interval
    else:
        body.pop("interval", None)

    response = api_client_for(alice).post("/monitors", body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["pending_for"] == checks


def test_a_pending_duration_that_cannot_be_read_or_is_too_long_is_a_field_error(
    alice, api_client_for
) -> None:
    source = SourceFactory(owner=alice)
    client = api_client_for(alice)

    unreadable = client.post("/monitors", monitor_body(source, pending_for="soon"), format="json")
    too_long = client.post(
        "/monitors", monitor_body(source, pending_for="1d", interval="00:01:00"), format="json"
    )

    assert unreadable.status_code == too_long.status_code == 400
    assert unreadable.json()["pending_for"] == [
        "must be a number of checks (e.g. 3) or a duration such as 10m"
    ]
    assert too_long.json()["pending_for"] == [
        "at most 1 h 39 min when checking every 1 min (100 checks)"
    ]
