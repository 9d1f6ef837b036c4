"""Every number and duration a user sets is bounded in the model layer (monitors/models.py):
the API answers 400 naming the field, the services (the shell) refuse it, and the endpoints that
evaluate a stored monitor never answer 500 for a row planted past those bounds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.utils import timezone

from monitors import services
from monitors.evaluate import step
from monitors.models import Monitor
from tests.factories import MonitorFactory, SourceFactory
from tests.monitors.test_api import monitor_body

pytestmark = pytest.mark.django_db


def test_the_reported_interval_is_refused_naming_interval(alice, api_client_for) -> None:
    source = SourceFactory(owner=alice)

    response = api_client_for(alice).post(
        "/monitors", monitor_body(source, interval="999999999 00:00:00"), format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"interval": ["must be between 1 second and 1 day"]}
    assert not Monitor.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("repeat_every", "-00:05:00", "must be between 1 minute and 7 days"),
        ("repeat_every", "00:00:30", "must be between 1 minute and 7 days"),
        ("interval", "00:00:00.500000", "must be between 1 second and 1 day"),
        ("interval", "-1 00:00:00", "must be between 1 second and 1 day"),
        ("window", "8 00:00:00", "must be between 1 second and 7 days"),
        ("window", "00:00:00", "must be between 1 second and 7 days"),
        ("pending_for", 101, "must be between 1 and 100"),
        ("recover_after", 0, "must be between 1 and 100"),
        ("critical", 1e16, "must be a finite number between -1e15 and 1e15"),
        ("warning", -1e16, "must be a finite number between -1e15 and 1e15"),
        ("percentile", 101, "must be above 0 and at most 100"),
        ("percentile", 0, "must be above 0 and at most 100"),
        ("tags", {"device": "a\x00b"}, "tag names and values cannot contain NUL characters"),
    ],
)
def test_out_of_range_values_answer_400_naming_the_field(
    alice, api_client_for, field, value, message
) -> None:
    source = SourceFactory(owner=alice)

    response = api_client_for(alice).post(
        "/monitors", monitor_body(source, **{field: value}), format="json"
    )

    assert response.status_code == 400
    assert response.json() == {field: [message]}


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_thresholds_that_are_not_finite_numbers_answer_400(alice, api_client_for, value) -> None:
    source = SourceFactory(owner=alice)

    response = api_client_for(alice).post(
        "/monitors", monitor_body(source, critical=value, warning=None), format="json"
    )

    assert response.status_code == 400
    assert set(response.json()) == {"critical"}


def test_an_edit_is_bounded_too(alice, api_client_for) -> None:
    monitor = MonitorFactory(owner=alice)

    response = api_client_for(alice).patch(
        f"/monitors/{monitor.pk}", {"repeat_every": "-00:01:00"}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()) == {"repeat_every"}
    monitor.refresh_from_db()
    assert monitor.repeat_every is None


def test_a_silence_lasts_at_most_a_year(alice, api_client_for) -> None:
    client = api_client_for(alice)
    now = timezone.now()

    long = client.post(
        "/silences", {"ends_at": (now + timedelta(days=400)).isoformat()}, format="json"
    )
    year = client.post(
        "/silences", {"ends_at": (now + timedelta(days=365)).isoformat()}, format="json"
    )

    assert long.status_code == 400
    assert long.json() == {"ends_at": ["a silence can last at most 366 days"]}
    assert year.status_code == 201


def test_a_source_timeout_is_bounded(alice, api_client_for) -> None:
    from tests import customer_influx

    body = {"name": "s", "url": customer_influx.url(), "database": "d"}
    client = api_client_for(alice)

    slow = client.post("/sources", {**body, "timeout_seconds": 3600}, format="json")
    ok = client.post("/sources", {**body, "timeout_seconds": 30}, format="json")

    assert slow.status_code == 400
    assert slow.json() == {"timeout_seconds": ["must be between 0.1 and 60 seconds"]}
    assert ok.status_code == 201


def test_the_services_refuse_out_of_range_values_from_the_shell(alice) -> None:
    source = SourceFactory(owner=alice)
    fields: dict[str, Any] = {
        "source": source,
        "name": "n",
        "measurement": "m",
        "field": "f",
        "critical": 1,
    }

    with pytest.raises(ValidationError) as refused:
        services.monitor_create(owner=alice, interval=timedelta(days=999999999), **fields)
    monitor = services.monitor_create(owner=alice, **fields)
    with pytest.raises(ValidationError) as edit:
        services.monitor_update(monitor=monitor, repeat_every=timedelta(minutes=-5))
    with pytest.raises(ValidationError) as timeout:
        services.source_update(source=source, timeout_seconds=float("nan"))

    assert set(refused.value.message_dict) == {"interval"}
    assert set(edit.value.message_dict) == {"repeat_every"}
    assert set(timeout.value.message_dict) == {"timeout_seconds"}


def plant(monitor: Monitor, constraint: str, assignment: str) -> None:
    """Writes a value past validation and past the CHECK constraint (dropped inside the test's
    transaction, which rolls back)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if constraint:
            cursor.execute(f"ALTER TABLE monitors_monitor DROP CONSTRAINT {constraint}")
        cursor.execute(f"UPDATE monitors_monitor SET {assignment} WHERE id = %s", [monitor.pk])  # noqa: S608


@pytest.mark.parametrize(
    ("constraint", "assignment", "reason"),
    [
        ("monitor_repeat_every_in_range", "repeat_every = '-5 minutes'", "its repeat_every"),
        ("monitor_checks_in_range", "pending_for = 0", "its pending_for"),
        ("monitor_numbers_finite", "critical = 'NaN'", "its critical"),
        ("", """state = '{"status": "exploded"}'""", step.UNREADABLE_STATE),
    ],
)
def test_testing_a_stored_monitor_with_odd_values_answers_a_readable_error_not_500(
    alice, api_client_for, influx_db, constraint, assignment, reason
) -> None:
    influx_db.write("gro01", "temperature", [(5, 41.0)], {"device": "greenhouse-1"})
    source = SourceFactory(owner=alice, database=influx_db.database)
    monitor = MonitorFactory(owner=alice, source=source)
    plant(monitor, constraint, assignment)

    response = api_client_for(alice).post(f"/monitors/{monitor.pk}/test")

    assert response.status_code == 200
    assert response.json()["status"] == "error"
    assert reason in response.json()["reason"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("repeat_every", "-00:05:00"),
        ("interval", "999999999 00:00:00"),
        ("window", "-00:05:00"),
        ("critical", "NaN"),
        ("pending_for", 0),
    ],
)
def test_previewing_odd_values_answers_400_not_500(alice, api_client_for, field, value) -> None:
    source = SourceFactory(owner=alice)

    response = api_client_for(alice).post(
        "/monitors/preview", monitor_body(source, **{field: value}), format="json"
    )

    assert response.status_code == 400
    assert field in response.json()


def test_the_migration_clamps_stored_rows_into_the_bounds_its_constraints_then_hold(
    alice,
) -> None:
    from importlib import import_module

    from monitors.models import Schedule, Silence

    migration = import_module("monitors.migrations.0010_bounds_on_user_settings")
    constraints = [
        c
        for c in Monitor._meta.constraints
        if c.name.startswith("monitor_") and isinstance(c, models.CheckConstraint)
    ]
    source = SourceFactory(owner=alice)
    wild, unknown = MonitorFactory(owner=alice, source=source), MonitorFactory(owner=alice)
    silence = Silence.objects.create(owner=alice, ends_at=timezone.now() + timedelta(days=1))
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for constraint in constraints:
            cursor.execute(f"ALTER TABLE monitors_monitor DROP CONSTRAINT {constraint.name}")
        cursor.execute("ALTER TABLE monitors_schedule DROP CONSTRAINT schedule_interval_in_range")
        cursor.execute(
            """UPDATE monitors_monitor SET interval = '999999999 days', "window" = '-5 minutes',
            repeat_every = '-5 minutes', pending_for = 0, recover_after = 5000,
            critical = 'Infinity', warning = 'NaN', percentile = 'NaN' WHERE id = %s""",
            [wild.pk],
        )
        cursor.execute("UPDATE monitors_schedule SET interval = '999999999 days'")
        cursor.execute("UPDATE monitors_monitor SET critical = 'NaN' WHERE id = %s", [unknown.pk])
        cursor.execute("UPDATE monitors_source SET timeout_seconds = 'Infinity'")
        cursor.execute("UPDATE monitors_silence SET ends_at = starts_at + interval '50 years'")

        cursor.execute(migration.CLAMP)

    wild.refresh_from_db()
    assert (wild.interval, wild.window, wild.repeat_every) == (
        timedelta(days=1),
        timedelta(seconds=1),
        None,
    )
    assert (wild.pending_for, wild.recover_after) == (1, 100)
    assert (wild.critical, wild.warning, wild.percentile) == (1e15, None, None)
    assert Schedule.objects.get(monitor=wild).interval == timedelta(days=1)
    unknown.refresh_from_db()
    assert (unknown.enabled, unknown.status, unknown.critical) == (False, "paused", 0)
    assert "critical threshold was not a number" in unknown.status_reason
    assert not Schedule.objects.filter(monitor=unknown).exists()
    source.refresh_from_db()
    assert source.timeout_seconds == 60
    silence.refresh_from_db()
    assert silence.ends_at - silence.starts_at == timedelta(days=366)
    with connection.schema_editor() as editor:  # the rows now satisfy every constraint
        for constraint in constraints:
            editor.add_constraint(Monitor, constraint)
        editor.add_constraint(Schedule, Schedule._meta.constraints[0])


@pytest.mark.parametrize(
    ("interval", "message"),
    [
        ("999999999d", "Must be between 1 second and 1 day."),
        ("99999999999999d", "That duration is far too long."),
        ("5s", "Must be at least 10 seconds on your plan."),
    ],
)
def test_the_monitor_page_shows_the_bound_once_next_to_the_field(
    client, alice, interval, message
) -> None:
    source = SourceFactory(owner=alice)
    client.force_login(alice)
    data = {
        "name": "too warm", "source": source.pk, "measurement": "gro01", "field": "temperature",
        "tags": "device=greenhouse-1", "aggregation": "mean", "window": "5m",
        "comparator": "above", "critical": "30", "interval": interval, "pending_for": "1",
        "recover_after": "1", "no_data_policy": "status", "error_policy": "status",
    }  # fmt: skip

    response = client.post("/app/monitors/new", data)

    assert response.status_code == 400
    assert response.context["form"].errors == {"interval": [message]}
    assert not Monitor.objects.exists()


def test_a_model_validation_error_behind_the_serializer_is_a_400_naming_the_field() -> None:
    """A service's full_clean refusing what a serializer let through: the API's exception
    handler (shared/errors.py, every view) answers 400 naming the field, not 500."""
    from django.core.exceptions import ValidationError as ModelValidationError

    from shared.errors import api_exception_handler

    refused = api_exception_handler(
        ModelValidationError({"interval": ["must be between 1 second and 1 day"]}), {}
    )

    assert refused is not None
    assert refused.status_code == 400
    assert refused.data == {"interval": ["must be between 1 second and 1 day"]}


def test_the_admin_form_refuses_out_of_range_values_with_the_same_messages(alice, rf) -> None:
    from django.contrib import admin

    from monitors.models import Silence

    request = rf.get("/admin/")
    request.user = alice
    source = SourceFactory(owner=alice)
    monitor_form = admin.site._registry[Monitor].get_form(request)
    silence_form = admin.site._registry[Silence].get_form(request)
    data = {
        "owner": alice.pk, "source": source.pk, "name": "n", "measurement": "m", "field": "f",
        "tags": "{}", "aggregation": "mean", "window": "00:05:00", "comparator": "above",
        "critical": "30", "interval": "999999999 00:00:00", "pending_for": "1",
        "recover_after": "1", "repeat_every": "-00:05:00", "no_data_policy": "status",
        "error_policy": "status", "status": "ok",
    }  # fmt: skip
    now = timezone.now()

    form = monitor_form(data=data)
    silence = silence_form(
        data={"owner": alice.pk, "starts_at_0": now.date(), "starts_at_1": now.time(),
              "ends_at_0": (now + timedelta(days=400)).date(), "ends_at_1": now.time()}
    )  # fmt: skip

    assert not form.is_valid()
    assert form.errors["interval"] == ["must be between 1 second and 1 day"]
    assert form.errors["repeat_every"] == ["must be between 1 minute and 7 days"]
    assert not silence.is_valid()
    assert silence.errors["ends_at"] == ["a silence can last at most 366 days"]


@pytest.mark.django_db
@pytest.mark.parametrize("threshold", [0, 1001])
def test_the_database_refuses_a_storm_threshold_outside_its_bound(threshold) -> None:
    """Bounded where it is stored, not only by the validators (an update skips them)."""
    from django.db import IntegrityError, transaction

    monitor = MonitorFactory()

    with (
        pytest.raises(IntegrityError, match="monitor_storm_threshold_in_range"),
        transaction.atomic(),
    ):
        Monitor.objects.filter(pk=monitor.pk).update(storm_threshold=threshold)
    Monitor.objects.filter(pk=monitor.pk).update(storm_threshold=1000)  # the bound itself is fine
