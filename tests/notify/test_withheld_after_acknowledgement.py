"""An escalation step or "still firing" repeat written (even claimed) before the incident was
acknowledged or resolved is not sent after it: delivery looks at the incident just before the
send, marks the row "Not sent" with the reason, and the timeline says who stopped it. A
notification that is not a nag (fired, resolved) still goes out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from monitors.escalation_policies import StepInput
from monitors.models import Incident, Notification
from monitors.notify import acknowledge, delivery
from monitors.timeline import incident_timeline
from monitors.vocabulary import AckRoute
from tests.factories import ChannelFactory, MonitorFactory, UserFactory
from tests.notify.test_escalation import OPENED, open_incident, policy_of, take

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def hook(alice, receiver):
    return ChannelFactory(owner=alice, name="on call", kind="webhook", config={"url": receiver.url})


def escalated_row(alice, hook):
    """The first step's outbox row of a fresh incident, written at 5 minutes past opening."""
    policy_of(alice, [StepInput(after_minutes=5, channels=[hook])])
    incident = open_incident(MonitorFactory(owner=alice))
    assert take(OPENED + timedelta(minutes=5)).taken == 1
    return incident, Notification.objects.get(incident=incident, event="escalated")


def test_a_step_written_before_the_acknowledgement_is_not_sent_after_it(alice, hook, receiver):
    incident, row = escalated_row(alice, hook)
    with time_machine.travel(OPENED + timedelta(minutes=5, seconds=1), tick=False):
        acknowledge.acknowledge(incident.pk, via=AckRoute.API, by=alice)
        assert delivery.deliver(row.pk) == "withheld"
    assert receiver.hits == []
    row.refresh_from_db()
    assert row.status == Notification.DeliveryStatus.WITHHELD
    assert row.last_error == "not sent: acknowledged by alice via the API"
    assert row.attempts == 0  # nothing was tried
    assert not row.delivery_attempts.exists()
    assert delivery.deliver(row.pk) == "skipped"  # a second task finds nothing to claim
    incident.refresh_from_db()
    [entry] = [e for e in incident_timeline(incident) if e.kind == "escalation"]
    assert entry.delivery == "Not sent: acknowledged by alice via the API"


def test_a_step_claimed_before_the_acknowledgement_is_checked_at_the_send(
    alice, hook, receiver, monkeypatch
):
    """The acknowledgement lands between the claim and the send: the send is not made."""
    incident, row = escalated_row(alice, hook)
    claim = delivery.claim

    def claim_then_acknowledge(notification_id):
        claimed = claim(notification_id)
        acknowledge.acknowledge(incident.pk, via=AckRoute.SMS, note="+15551234567")
        return claimed

    monkeypatch.setattr(delivery, "claim", claim_then_acknowledge)
    assert delivery.deliver(row.pk) == "withheld"
    assert receiver.hits == []
    row.refresh_from_db()
    assert row.last_error == "not sent: acknowledged by +15551234567 via an SMS reply"


def test_a_resolved_incidents_pending_step_and_repeat_are_not_sent(alice, hook, receiver):
    incident, row = escalated_row(alice, hook)
    repeat = Notification.objects.create(
        monitor=incident.monitor,
        incident=incident,
        channel=hook,
        event="repeated",
        idempotency_key=f"repeat-{incident.pk}",
        payload={},
    )
    resolved = datetime(2026, 12, 2, 14, 6, tzinfo=UTC)
    Incident.objects.filter(pk=incident.pk).update(resolved_at=resolved)
    assert delivery.deliver(row.pk) == "withheld"
    assert delivery.deliver(repeat.pk) == "withheld"
    assert receiver.hits == []
    row.refresh_from_db()
    assert row.last_error.startswith("not sent: the incident was resolved at 2026-12-02 ")


def test_an_unacknowledged_step_and_a_fired_notification_after_an_ack_are_sent(
    alice, hook, receiver
):
    incident, row = escalated_row(alice, hook)
    assert delivery.deliver(row.pk) == "sent"
    fired = Notification.objects.create(
        monitor=incident.monitor,
        incident=incident,
        channel=hook,
        event="fired",
        idempotency_key=f"fired-{incident.pk}",
        payload={},
    )
    acknowledge.acknowledge(incident.pk, via=AckRoute.PAGE, by=alice)
    assert delivery.deliver(fired.pk) == "sent"  # what happened is still told
    assert len(receiver.accepted) == 2
