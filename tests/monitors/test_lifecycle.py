"""Edits against the evaluation pipeline, on real Postgres and InfluxDB: an edit writes only
what it changed, and pausing or redefining a firing monitor ends its incident and tells its
channels once, through the outbox."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from monitors import services
from monitors.evaluate import dispatch, pipeline
from monitors.models import Incident, Monitor, Notification, Schedule, Status
from tests.factories import MonitorFactory
from tests.monitors.test_pipeline import COOL, HOT, due_again, tick, write

pytestmark = pytest.mark.django_db


def fire(monitor, influx_db) -> Incident:
    write(influx_db, HOT)
    [result] = tick()
    assert result.applied == 1
    monitor.refresh_from_db()
    assert monitor.status == Status.FIRING
    return Incident.objects.get(monitor=monitor, resolved_at=None)


# ---------------------------------------------------------------- lost update


def test_an_edit_through_a_stale_instance_keeps_the_state_the_pipeline_committed(
    hot_monitor, influx_db
):
    stale = Monitor.objects.get(pk=hot_monitor.pk)  # e.g. the API loaded it for a PATCH
    fire(hot_monitor, influx_db)

    services.monitor_update(monitor=stale, name="renamed")

    after = Monitor.objects.get(pk=hot_monitor.pk)
    assert after.name == "renamed"
    assert (after.status, after.last_value) == (Status.FIRING, HOT)
    assert after.state_version == 1
    assert after.state["alerting"] is True
    assert after.evaluated_due_at is not None
    assert after.last_evaluated_at is not None
    assert Incident.objects.filter(monitor=after, resolved_at=None).exists()
    assert stale.status == Status.FIRING  # the caller's instance is the row as written


def test_an_edit_keeps_every_state_field_a_concurrent_commit_wrote():
    monitor = MonitorFactory()
    stale = Monitor.objects.get(pk=monitor.pk)
    now = timezone.now()
    with connection.cursor() as cursor:  # stands for the pipeline's conditional UPDATE
        cursor.execute(
            "UPDATE monitors_monitor SET status = 'no_data', state = '{\"status\": \"no_data\"}',"
            " state_version = state_version + 1, status_reason = 'no data',"
            " status_changed_at = %s, last_value = 12.5, last_evaluated_at = %s,"
            " evaluated_due_at = %s WHERE id = %s",
            [now, now, now, monitor.pk],
        )

    services.monitor_update(monitor=stale, description="north bay", pending_for=3)

    after = Monitor.objects.get(pk=monitor.pk)
    assert (after.description, after.pending_for) == ("north bay", 3)
    assert (after.status, after.status_reason, after.state) == (
        "no_data",
        "no data",
        {"status": "no_data"},
    )
    assert (after.state_version, after.last_value) == (1, 12.5)
    assert after.status_changed_at == after.last_evaluated_at == after.evaluated_due_at == now


def test_a_new_definition_on_a_stale_instance_decides_from_the_committed_state(
    hot_monitor, influx_db
):
    stale = Monitor.objects.get(pk=hot_monitor.pk)  # read while it was still ok
    incident = fire(hot_monitor, influx_db)

    services.monitor_update(monitor=stale, critical=50)

    incident.refresh_from_db()
    assert incident.resolved_at is not None
    assert Notification.objects.filter(monitor=hot_monitor, event="redefined").count() == 2


# ---------------------------------------------------------------- pause, resume, redefine


def test_pausing_a_firing_monitor_through_the_api_resolves_and_tells_each_channel_once(
    hot_monitor, influx_db, api_client_for, owner, django_capture_on_commit_callbacks
):
    incident = fire(hot_monitor, influx_db)
    client = api_client_for(owner)

    with django_capture_on_commit_callbacks() as delivery:
        response = client.patch(f"/monitors/{hot_monitor.pk}", {"enabled": False}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "paused"
    incident.refresh_from_db()
    assert incident.resolved_at is not None
    assert incident.summary.endswith("stopped firing: the monitor was paused")
    paused = Notification.objects.filter(monitor=hot_monitor, event="paused")
    assert sorted(n.channel_id for n in paused) == sorted(
        hot_monitor.channels.values_list("pk", flat=True)
    )
    assert (
        len(delivery) == 2
    )  # delivery enqueued after commit, like the pipeline's; live pages told
    payload = paused[0].payload
    assert (payload["event"], payload["status"], payload["previous_status"]) == (
        "paused",
        "paused",
        "firing",
    )
    assert payload["value"] == HOT
    assert payload["reason"] == "stopped firing: the monitor was paused"
    assert payload["incident"]["id"] == incident.pk
    assert payload["incident"]["resolved_at"] == incident.resolved_at.isoformat()
    assert payload["incident"]["duration_seconds"] >= 0
    assert not Schedule.objects.filter(monitor_id=hot_monitor.pk).exists()

    again = client.patch(f"/monitors/{hot_monitor.pk}", {"enabled": False}, format="json")

    assert again.status_code == 200
    assert Notification.objects.filter(monitor=hot_monitor).exclude(event="fired").count() == 2


def test_resuming_starts_afresh_and_a_new_breach_opens_a_new_incident(
    hot_monitor, influx_db, api_client_for, owner
):
    first = fire(hot_monitor, influx_db)
    client = api_client_for(owner)
    client.patch(f"/monitors/{hot_monitor.pk}", {"enabled": False}, format="json")

    resumed = client.patch(f"/monitors/{hot_monitor.pk}", {"enabled": True}, format="json")

    assert resumed.status_code == 200
    hot_monitor.refresh_from_db()
    assert hot_monitor.status == Status.OK
    assert hot_monitor.state["alerting"] is False
    assert not Incident.objects.filter(resolved_at=None).exists()  # none reopened
    assert Notification.objects.filter(monitor=hot_monitor).count() == 4  # 2 fired, 2 paused
    soon = timezone.now() + hot_monitor.interval  # a resume is due within its first interval
    assert [c.monitor_id for c in dispatch.claim_due(now=soon)] == [hot_monitor.pk]

    due_again(hot_monitor)
    tick()  # still hot: fires again, as a new incident

    assert Incident.objects.filter(monitor=hot_monitor).exclude(pk=first.pk).get().is_open
    assert Notification.objects.filter(monitor=hot_monitor, event="fired").count() == 4


def test_pausing_a_firing_monitor_from_its_page_resolves_and_tells_each_channel_once(
    hot_monitor, influx_db, owner
):
    incident = fire(hot_monitor, influx_db)
    client = Client()
    client.force_login(owner)

    response = client.post(f"/app/monitors/{hot_monitor.pk}/toggle")

    assert response.status_code == 302
    hot_monitor.refresh_from_db()
    assert hot_monitor.status == Status.PAUSED
    incident.refresh_from_db()
    assert incident.resolved_at is not None
    assert Notification.objects.filter(monitor=hot_monitor, event="paused").count() == 2
    page = client.get(f"/app/monitors/{hot_monitor.pk}").content.decode()
    assert "Monitor paused." in page

    services.monitor_set_enabled(monitor=hot_monitor, enabled=False)  # a second pause

    assert Notification.objects.filter(monitor=hot_monitor, event="paused").count() == 2


def test_a_new_definition_ends_the_incident_and_the_monitor_is_due_now(
    hot_monitor, influx_db, api_client_for, owner
):
    incident = fire(hot_monitor, influx_db)
    Schedule.objects.filter(monitor_id=hot_monitor.pk).update(
        next_due_at=timezone.now() + timedelta(hours=1)
    )

    response = api_client_for(owner).patch(
        f"/monitors/{hot_monitor.pk}", {"critical": 50}, format="json"
    )

    assert response.status_code == 200
    hot_monitor.refresh_from_db()
    assert (hot_monitor.status, hot_monitor.status_reason) == (Status.OK, "definition changed")
    incident.refresh_from_db()
    assert incident.summary.endswith("stopped firing: its definition changed")
    redefined = Notification.objects.filter(monitor=hot_monitor, event="redefined")
    assert redefined.count() == 2
    assert redefined[0].payload["previous_status"] == "firing"
    assert [c.monitor_id for c in dispatch.claim_due(now=timezone.now())] == [hot_monitor.pk]

    due_again(hot_monitor)
    tick()  # 41 is below the new threshold: nothing more to say
    assert Notification.objects.filter(monitor=hot_monitor).count() == 4


def test_pausing_a_monitor_that_is_not_firing_tells_nobody(hot_monitor):
    services.monitor_set_enabled(monitor=hot_monitor, enabled=False)

    hot_monitor.refresh_from_db()
    assert hot_monitor.status == Status.PAUSED
    assert not Notification.objects.exists()


def test_a_pause_under_a_silence_ends_the_incident_quietly(hot_monitor, influx_db, owner):
    from monitors.models import Silence

    incident = fire(hot_monitor, influx_db)
    Silence.objects.create(owner=owner, ends_at=timezone.now() + timedelta(hours=1))

    services.monitor_set_enabled(monitor=hot_monitor, enabled=False)

    incident.refresh_from_db()
    assert incident.resolved_at is not None
    assert not Notification.objects.filter(event="paused").exists()


@pytest.mark.django_db(transaction=True)
def test_an_evaluation_racing_a_pause_waits_for_it_and_is_refused(hot_monitor, influx_db):
    fire(hot_monitor, influx_db)
    write(influx_db, COOL, ago=1)
    Monitor.objects.filter(pk=hot_monitor.pk).update(window=timedelta(seconds=3))
    due_again(hot_monitor)
    [batch] = dispatch.claim_batches(now=timezone.now(), size=500)
    results = []

    def evaluate() -> None:  # read before the pause commits; its resolve must not land after
        try:
            results.append(pipeline.evaluate_batch([(c.monitor_id, c.due_at) for c in batch]))
        finally:
            connection.close()

    with transaction.atomic():
        services.monitor_set_enabled(monitor=hot_monitor, enabled=False)
        worker = threading.Thread(target=evaluate)
        worker.start()
        wait_until_blocked_on_a_lock()
    worker.join(30)

    assert [r.applied for r in results] == [0]
    hot_monitor.refresh_from_db()
    assert (hot_monitor.status, hot_monitor.enabled) == (Status.PAUSED, False)
    assert hot_monitor.state["status"] == "paused"
    events = sorted(Notification.objects.values_list("event", flat=True))
    assert events == ["fired", "fired", "paused", "paused"]  # no "resolved" after the pause


def wait_until_blocked_on_a_lock() -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:  # in a transaction: a fresh statistics snapshot
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            row = cursor.fetchone()
        if row and row[0] >= 1:
            return
        time.sleep(0.05)
    pytest.fail("the evaluation never reached its UPDATE")


def admin_form_data(admin_client, monitor: Monitor, **changes) -> dict[str, Any]:
    """The monitor's admin change form as the browser would post it, with ``changes``."""
    page = admin_client.get(f"/admin/monitors/monitor/{monitor.pk}/change/")
    form = page.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = field.prepare_value(form.initial.get(name))
        if value is None or value is False:
            continue
        data[name] = [str(v) for v in value] if isinstance(value, list) else value
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({management.add_prefix(k): v for k, v in management.initial.items()})
        for inline in formset.formset.forms:
            data[inline.add_prefix("id")] = inline.instance.pk
            data[inline.add_prefix("monitor")] = monitor.pk
    data.update(changes)
    return {k: v for k, v in data.items() if v is not False}


def test_unchecking_enabled_in_the_admin_pauses_like_the_api(hot_monitor, influx_db, admin_client):
    incident = fire(hot_monitor, influx_db)
    data = admin_form_data(admin_client, hot_monitor, enabled=False)

    response = admin_client.post(f"/admin/monitors/monitor/{hot_monitor.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    hot_monitor.refresh_from_db()
    assert hot_monitor.status == Status.PAUSED
    incident.refresh_from_db()
    assert incident.resolved_at is not None
    paused = Notification.objects.filter(monitor=hot_monitor, event="paused")
    assert paused.count() == 2
    assert hot_monitor.last_value == HOT  # the form's untouched fields were not written
