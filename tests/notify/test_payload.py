"""One payload shape: what the pipeline writes for a monitor's event, a channel's test message
and a failing channel's notice are all built as monitors.notify.payload.Payload, with the same
keys (docs/notifications.md)."""

from __future__ import annotations

import dataclasses

import pytest
from django.utils import timezone

import alerts_core as ac
from monitors.evaluate import pipeline
from monitors.influxdb import observe
from monitors.notify import services, streaks
from monitors.notify.payload import Payload
from tests.factories import ChannelFactory, MonitorFactory

# Only present when they apply: the channel a message is about, a fleet monitor's series, a
# storm's changes (see tests/monitors/test_fleet.py).
OPTIONAL = {"channel", "series", "changes", "changes_total"}
KEYS = {"version"} | {f.name for f in dataclasses.fields(Payload)} - OPTIONAL


@pytest.mark.django_db
def test_a_monitors_event_a_test_message_and_a_failing_channel_share_one_shape() -> None:
    monitor = MonitorFactory(critical=30)
    now = timezone.now()
    event = ac.Event(
        kind=ac.EventKind.FIRED,
        at=now,
        status=ac.Status.FIRING,
        previous_status=ac.Status.OK,
        value=31.0,
        message="31 is above 30 (critical)",
    )
    decision = pipeline.Decision(
        monitor=monitor,
        due_at=now,
        observation=observe.Observation(query=None, value=31.0),
        outcome=ac.Outcome.failed(value=31.0),
        state=ac.MonitorState(),
        events=[event],
    )
    channel = ChannelFactory(owner=monitor.owner)

    alert = pipeline.payload(decision, event, None)
    test = services.test_payload(channel)
    failing = streaks.payload(channel, "HTTP 500", disabled=False)

    assert set(alert) == set(test) == KEYS
    assert set(failing) == KEYS | {"channel"}
    assert (alert["version"], alert["event"], alert["value"]) == (1, "fired", 31.0)
    assert alert["monitor"]["id"] == monitor.pk
    # a test claims no status change and links to no monitor
    assert (test["event"], test["monitor"]["id"], test["status"]) == ("test", None, None)
    assert test["monitor"]["url"] == ""
    assert failing["channel"] == {"id": channel.pk, "name": channel.name, "kind": channel.kind}
