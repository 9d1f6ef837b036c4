"""No data notifies by default: a monitor created through the API without a no-data policy
fires when its series is silent for its window, the email says it is about missing data, and
it resolves when data returns. "Show as a status only" stays a choice."""

from __future__ import annotations

import pytest
from django.utils import timezone

from monitors.evaluate import dispatch, pipeline
from monitors.models import Monitor, Notification, Schedule, Status
from monitors.notify import delivery
from tests.factories import ChannelFactory, SourceFactory
from tests.notify.conftest import Inbox, smtp_inbox  # noqa: F401 (a fixture)


def tick() -> None:
    Schedule.objects.update(next_due_at=timezone.now())
    for batch in dispatch.claim_batches(now=timezone.now(), size=500):
        pipeline.evaluate_batch([(c.monitor_id, c.due_at) for c in batch])


def deliver(event: str) -> None:
    for notification in Notification.objects.filter(event=event, status="pending"):
        assert delivery.deliver(notification.pk) == "sent"


def _definition(source_id: int, channel_id: int, **extra: object) -> dict[str, object]:
    return {
        "name": "Nursery too warm",
        "source": source_id,
        "measurement": "gro01",
        "field": "temperature",
        "tags": {"device": "nursery"},
        "aggregation": "mean",
        "window": "60",
        "comparator": "above",
        "critical": 35,
        "interval": "10",
        "channels": [channel_id],
        **extra,
    }


@pytest.mark.django_db
def test_a_new_monitor_notifies_when_its_series_goes_silent_and_resolves_when_it_returns(
    alice,
    api_client_for,
    influx_db,
    smtp_inbox: Inbox,  # noqa: F811 (the imported fixture)
):
    source = SourceFactory(owner=alice, database=influx_db.database)
    email = ChannelFactory(owner=alice, kind="email", config={"addresses": ["a@example.com"]})
    created = api_client_for(alice).post(
        "/monitors", _definition(source.pk, email.pk), format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["no_data_policy"] == "alerting"
    monitor = Monitor.objects.get(pk=created.json()["id"])

    tick()  # nothing in the last minute
    monitor.refresh_from_db()
    assert monitor.status == Status.FIRING
    assert monitor.status_reason == "no data in the last 1 min"
    deliver("fired")
    [message] = smtp_inbox.messages
    assert message["Subject"] == "[FIRING] Nursery too warm"
    plain = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    body = plain.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "no data in the last 1 min" in body.decode()

    influx_db.write("gro01", "temperature", [(2, 22.0)], {"device": "nursery"})
    tick()
    monitor.refresh_from_db()
    assert monitor.status == Status.OK
    deliver("resolved")
    assert [m["Subject"] for m in smtp_inbox.messages] == [
        "[FIRING] Nursery too warm",
        "[RESOLVED] Nursery too warm",
    ]


@pytest.mark.django_db
def test_show_as_a_status_only_stays_a_choice_and_notifies_nobody(alice, api_client_for, influx_db):
    source = SourceFactory(owner=alice, database=influx_db.database)
    channel = ChannelFactory(owner=alice)
    created = api_client_for(alice).post(
        "/monitors",
        _definition(source.pk, channel.pk, no_data_policy="status", pending_for=1),
        format="json",
    )
    assert created.json()["no_data_policy"] == "status"

    tick()
    monitor = Monitor.objects.get(pk=created.json()["id"])
    assert monitor.status == Status.NO_DATA
    assert not Notification.objects.filter(monitor=monitor).exists()


@pytest.mark.django_db
def test_no_data_waits_for_the_checks_set_in_pending_for(alice, api_client_for, influx_db):
    source = SourceFactory(owner=alice, database=influx_db.database)
    channel = ChannelFactory(owner=alice)
    created = api_client_for(alice).post(
        "/monitors", _definition(source.pk, channel.pk, pending_for=2), format="json"
    )
    monitor = Monitor.objects.get(pk=created.json()["id"])

    tick()
    monitor.refresh_from_db()
    assert monitor.status == Status.PENDING
    tick()
    monitor.refresh_from_db()
    assert monitor.status == Status.FIRING
    assert Notification.objects.filter(monitor=monitor, event="fired").count() == 1


@pytest.mark.django_db
def test_the_model_and_the_page_form_default_to_notifying(alice):
    from growalert.pages.forms import MonitorForm

    assert Monitor().no_data_policy == "alerting"
    assert MonitorForm(owner=alice)["no_data_policy"].value() == "alerting"
