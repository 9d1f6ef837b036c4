"""GET /monitors answers with JSON that Postgres writes (selectors.monitor_page_json): it must
stay equal, value for value, to what MonitorSerializer renders for the same monitors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils.duration import duration_string
from rest_framework import serializers
from rest_framework.fields import DateTimeField
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIRequestFactory, force_authenticate

from monitors import raw_rows, selectors
from monitors.api import MonitorViewSet
from monitors.models import Monitor
from monitors.serializers import MonitorSerializer, json_columns
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory

pytestmark = pytest.mark.django_db


def rendered(data: Any) -> Any:
    """``data`` as an API client reads it: through DRF's JSONRenderer and back."""
    return json.loads(JSONRenderer().render(data))


def serialized(owner: Any, serializer_class: type[MonitorSerializer] = MonitorSerializer) -> Any:
    """The owner's monitors in list order, rendered by the serializer from model instances."""
    monitors = Monitor.objects.filter(owner=owner).prefetch_related("channels").order_by("name")
    return rendered(serializer_class(monitors, many=True).data)


@pytest.fixture
def every_kind_of_monitor(alice) -> list[Monitor]:
    """Monitors covering each field type and its edges."""
    source = SourceFactory(owner=alice)
    # Names in the reverse order of the ids: the channels' own order (name) is not their ids'.
    zulu = ChannelFactory(owner=alice, name="zulu")
    alpha = ChannelFactory(owner=alice, name="alpha")
    on_the_second = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    full = MonitorFactory(
        owner=alice,
        source=source,
        name="b full",
        description='démo ✓ "quoted" \\ back\nslash \u2028 separator \t tab',
        tags={"device": "gh-2", "zone": "nörd 北", "empty": ""},
        aggregation="percentile",
        percentile=99.9,
        comparator="outside",
        critical=-0.1,
        critical_high=1e14,  # large, inside the ±1e15 bound
        warning=1e-7,
        warning_high=123456789.123,
        recovery=0.0,
        window=timedelta(days=2, hours=3, seconds=4, microseconds=5),
        interval=timedelta(seconds=10),
        repeat_every=timedelta(days=1),
        pending_for=100,
        recover_after=7,
        no_data_policy="keep_last",
        error_policy="alerting",
        flap_detection=False,
        status="firing",
        status_reason="mean 36.2 above 35.25 ünïcode",
        status_changed_at=on_the_second,
        last_value=36.2,
        last_evaluated_at=on_the_second + timedelta(microseconds=120),
    )
    full.channels.set([zulu, alpha])
    Monitor.objects.filter(pk=full.pk).update(created_at=on_the_second)  # no microseconds
    full.next_due_at = on_the_second + timedelta(seconds=1, microseconds=999999)
    full.save()
    return [
        MonitorFactory(owner=alice, source=source, name="a plain"),
        full,
        MonitorFactory(
            owner=alice,
            source=source,
            name="c raw",
            measurement="",
            field="",
            tags={},
            raw_query='SELECT mean("t") FROM "m" WHERE $timeFilter',
            status="error",
        ),
        MonitorFactory(owner=alice, source=source, name="d paused", enabled=False, status="paused"),
        MonitorFactory(owner=alice, source=source, name="e one channel", status="firing"),
    ]


def test_the_page_postgres_writes_equals_the_serializers_output(
    alice, bob, api_client_for, every_kind_of_monitor
) -> None:
    every_kind_of_monitor[4].channels.set([every_kind_of_monitor[1].channels.first()])
    MonitorFactory(owner=bob, name="a bob's")
    client = api_client_for(alice)
    expected = serialized(alice)

    for query, want in [
        ("", expected),
        ("?limit=2", expected[:2]),
        ("?limit=2&offset=1", expected[1:3]),
        ("?limit=2&offset=4", expected[4:]),
        ("?limit=2&offset=9", []),
        ("?status=firing", [m for m in expected if m["status"] == "firing"]),
        ("?status=firing,paused&limit=1&offset=1", [expected[3]]),
        ("?status=no_data", []),
    ]:
        fast = client.get(f"/monitors{query}")
        # Indented JSON is what the serializer renders: the same page, the DRF way.
        slow = client.get(f"/monitors{query}", HTTP_ACCEPT="application/json; indent=2")

        assert not hasattr(fast, "data"), "answered by the serializer, not by Postgres"
        assert slow.data is not None
        assert fast["Content-Type"] == slow["Content-Type"] == "application/json"
        assert fast.json()["results"] == want, query
        assert fast.json() == slow.json(), query
    assert b"\\u2028" in client.get("/monitors").content  # escaped as JSONRenderer does


def test_datetimes_and_durations_read_as_drf_writes_them() -> None:
    moments = [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 10, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(5, 1, 1, tzinfo=UTC),
    ]
    durations = [
        timedelta(0),
        timedelta(microseconds=1),
        timedelta(seconds=10),
        timedelta(minutes=5),
        timedelta(hours=23, minutes=59, seconds=59, microseconds=999999),
        timedelta(days=1),
        timedelta(days=7, seconds=1, microseconds=500000),
        timedelta(days=10000, hours=1),
        timedelta(seconds=-1),
        timedelta(days=-3, microseconds=5),
    ]
    values = ", ".join(
        [raw_rows.json_value(f"%(m{i})s::timestamptz", "datetime") for i in range(len(moments))]
        + [raw_rows.json_value(f"%(d{i})s::interval", "duration") for i in range(len(durations))]
        + [raw_rows.json_value("NULL::interval", "duration")]
        + [raw_rows.json_value("NULL::timestamptz", "datetime")]
    )
    params: dict[str, Any] = {f"m{i}": m for i, m in enumerate(moments)} | {
        f"d{i}": d for i, d in enumerate(durations)
    }
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT json_build_array({values})::text", params)
        written = json.loads(cursor.fetchone()[0])

    drf = DateTimeField()
    assert written == [drf.to_representation(m) for m in moments] + [
        duration_string(d) for d in durations
    ] + [None, None]


class WithMoreFields(MonitorSerializer):
    """A serializer that grew: fields of known kinds join the SQL-built page by themselves."""

    class Meta(MonitorSerializer.Meta):
        fields = [*MonitorSerializer.Meta.fields, "state_version", "evaluated_due_at"]
        read_only_fields = [*MonitorSerializer.Meta.read_only_fields, "evaluated_due_at"]


def test_a_field_added_to_the_serializer_is_written_by_postgres_too(
    alice, every_kind_of_monitor
) -> None:
    Monitor.objects.filter(owner=alice).update(
        state_version=41, evaluated_due_at=datetime(2026, 5, 6, 7, 8, 9, 123, tzinfo=UTC)
    )
    columns = json_columns(WithMoreFields)

    page = selectors.monitor_page_json(owner=alice, columns=columns, limit=None)

    assert [c.key for c in columns] == list(WithMoreFields.Meta.fields)
    assert page.total == len(every_kind_of_monitor)
    assert json.loads(page.results) == serialized(alice, WithMoreFields)
    # past json_build_object's 100 arguments (50 keys), the keys keep the serializer's order
    assert len(columns) > selectors._BUILD_OBJECT_MAX_KEYS
    assert list(json.loads(page.results)[0]) == list(WithMoreFields.Meta.fields)


class WithAMethodField(MonitorSerializer):
    summary = serializers.SerializerMethodField()

    class Meta(MonitorSerializer.Meta):
        fields = [*MonitorSerializer.Meta.fields, "summary"]

    def get_summary(self, monitor: Monitor) -> str:
        return monitor.name.upper()


class WithADecimal(MonitorSerializer):
    rounded = serializers.DecimalField(source="critical", max_digits=6, decimal_places=2)

    class Meta(MonitorSerializer.Meta):
        fields = [*MonitorSerializer.Meta.fields, "rounded"]


class WithAComputedAttribute(MonitorSerializer):
    shown = serializers.ReadOnlyField(source="__str__")

    class Meta(MonitorSerializer.Meta):
        fields = [*MonitorSerializer.Meta.fields, "shown"]


@pytest.mark.parametrize("serializer_class", [WithAMethodField, WithADecimal])
def test_a_field_postgres_cannot_write_like_drf_is_refused(serializer_class) -> None:
    with pytest.raises(raw_rows.NoSqlColumn, match="no SQL for"):
        json_columns(serializer_class)


class WithACountAsText(MonitorSerializer):
    pending_for = serializers.CharField()  # DRF writes "3", Postgres's JSON would be 3


@pytest.mark.parametrize(
    ("serializer_class", "message"),
    [(WithAComputedAttribute, "__str__"), (WithACountAsText, "text field over a Positive")],
)
def test_a_column_postgres_would_write_otherwise_is_refused(alice, serializer_class, message):
    columns = json_columns(serializer_class)

    with pytest.raises(raw_rows.NoSqlColumn, match=message):
        selectors.monitor_page_json(owner=alice, columns=columns, limit=10)


def test_the_browsable_api_still_renders_the_page(alice, api_client_for) -> None:
    MonitorFactory(owner=alice, name="shown in html")

    page = api_client_for(alice).get("/monitors", HTTP_ACCEPT="text/html")

    assert page.status_code == 200
    assert b"shown in html" in page.content


def test_a_session_client_reads_the_same_page(alice, client, every_kind_of_monitor) -> None:
    client.force_login(alice)

    page = client.get("/monitors")

    assert page.status_code == 200
    assert page.json()["results"] == serialized(alice)


def test_the_page_statement_is_prepared_once_per_connection(alice, api_client_for) -> None:
    """Postgres plans the page once per connection; PREPARE-ing it twice would be an error."""
    MonitorFactory(owner=alice, name="one")
    MonitorFactory(owner=alice, name="two")
    client = api_client_for(alice)

    def runs() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(generic_plans + custom_plans), 0) FROM pg_prepared_statements"
                " WHERE name LIKE 'growalert_%%'"
            )
            return int(cursor.fetchone()[0])

    before = runs()
    first = client.get("/monitors?limit=1").json()
    second = client.get("/monitors?limit=1&offset=1").json()
    filtered = client.get("/monitors?status=ok,firing").json()
    again = client.get("/monitors?status=ok").json()

    assert [m["name"] for m in first["results"] + second["results"]] == ["one", "two"]
    assert filtered["count"] == again["count"] == 2
    assert runs() - before == 4


class WithDecimalThresholds(MonitorSerializer):
    critical = serializers.DecimalField(max_digits=8, decimal_places=2)


def test_a_serializer_postgres_cannot_follow_still_answers_through_itself(alice, caplog) -> None:
    monitor = MonitorFactory(owner=alice, name="still listed", critical=30)
    view = MonitorViewSet.as_view({"get": "list"}, serializer_class=WithDecimalThresholds)
    request = APIRequestFactory().get("/monitors")
    force_authenticate(request, user=alice)

    answer = view(request).render()

    assert answer.status_code == 200
    assert json.loads(answer.content)["results"] == rendered(
        WithDecimalThresholds([monitor], many=True).data
    )
    assert json.loads(answer.content)["results"][0]["critical"] == "30.00"
    assert "a field Postgres cannot write" in caplog.text
