"""The notifications a pause or a new definition writes reach every kind of channel with
their own words, in the documented payload."""

from __future__ import annotations

import pytest
from django.utils import timezone

from monitors import services
from monitors.models import Channel, Incident, Notification
from monitors.notify import delivery, messages, slack
from tests.factories import ChannelFactory, MonitorFactory
from tests.notify.test_delivery import PAYLOAD

pytestmark = pytest.mark.django_db

FIRING_STATE = {"status": "firing", "alerting": True, "announced": True, "value": 41.0}


def firing_monitor(channels):
    monitor = MonitorFactory(
        owner=channels[0].owner, name="greenhouse too hot", status="firing", state=FIRING_STATE
    )
    monitor.channels.set(channels)
    Incident.objects.create(monitor=monitor, opened_at=timezone.now(), summary="above 35")
    return monitor


def test_every_event_kind_has_a_title_and_a_slack_emoji():
    for kind in Notification.Event:
        assert kind in messages.TITLES, kind
        assert kind in slack.EMOJI, kind


@pytest.mark.parametrize(
    ("change", "event", "title", "emoji"),
    [
        ({"enabled": False}, "paused", "[PAUSED]", ":double_vertical_bar:"),
        ({"critical": 50.0}, "redefined", "[DEFINITION CHANGED]", ":pencil2:"),
    ],
)
def test_email_webhook_slack_and_sms_each_say_why_it_stopped_firing(
    change, event, title, emoji, smtp_inbox, receiver, twilio
):
    email = ChannelFactory(kind=Channel.Kind.EMAIL, config={"addresses": ["a@example.com"]})
    owner = email.owner
    hook = ChannelFactory(owner=owner, kind=Channel.Kind.WEBHOOK, config={"url": receiver.url})
    chat = ChannelFactory(owner=owner, kind=Channel.Kind.SLACK, config={"url": receiver.url})
    phone = ChannelFactory(owner=owner, kind=Channel.Kind.SMS, config={"phone": "+15551234567"})
    monitor = firing_monitor([email, hook, chat, phone])

    services.monitor_update(monitor=monitor, **change)

    rows = {n.channel_id: n for n in Notification.objects.filter(monitor=monitor)}
    assert {n.event for n in rows.values()} == {event}
    assert len(rows) == 4
    for row in rows.values():
        assert set(row.payload) == set(PAYLOAD)  # the documented shape, version 1
        assert delivery.deliver(row.pk) == "sent"
    subject = f"{title} greenhouse too hot"
    assert smtp_inbox.messages[0]["Subject"] == subject
    by_body = {"event" in r.json(): r for r in receiver.accepted}
    webhook_request, slack_request = by_body[True], by_body[False]
    assert webhook_request.headers["Growalert-Event"] == event
    assert webhook_request.json()["idempotency_key"] == rows[hook.pk].idempotency_key
    assert webhook_request.json()["reason"].startswith("stopped firing")
    assert slack_request.json()["text"].startswith(f"{emoji} {subject}: stopped firing")
    assert twilio.requests[0].form["Body"].startswith(f"{subject} — stopped firing")
