"""Delivery of outbox rows to real receivers: retries, permanent failures, timeouts,
exactly-once claims, signatures, SSRF refusal."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from django.utils import timezone

from monitors.models import Channel, DeliveryAttempt, Notification
from monitors.notify import delivery, http, webhook
from tests.factories import ChannelFactory, MonitorFactory, UserFactory

pytestmark = pytest.mark.django_db

PAYLOAD = {
    "version": 1,
    "event": "fired",
    "occurred_at": "2026-11-24T09:00:00+00:00",
    "monitor": {"id": 7, "name": "greenhouse too hot", "url": "http://testserver/app/monitors/7"},
    "status": "firing",
    "previous_status": "pending",
    "reason": "max(temperature) = 41.2 is above the critical threshold 35",
    "value": 41.2,
    "threshold": 35.0,
    "comparator": "above",
    "aggregation": "max",
    "window_seconds": 300,
    "query": 'SELECT max("temperature") AS "value" FROM "gro01" WHERE time > now() - 5m',
    "incident": {
        "id": 3,
        "opened_at": "2026-11-24T09:00:00+00:00",
        "resolved_at": None,
        "duration_seconds": None,
    },
    "points": [["2026-11-24T08:59:00+00:00", 33.0], ["2026-11-24T09:00:00+00:00", 41.2]],
    "unit": "°C",
    "precision": 1,
    "threshold_kind": "critical",
    "threshold_high": None,
    "tags": {"device": "greenhouse-1"},
    "failing_since": "2026-11-24T08:58:00+00:00",
    "time_zone": "UTC",
}


def outbox_row(channel, event="fired", **fields):
    return Notification.objects.create(
        channel=channel,
        monitor=MonitorFactory(owner=channel.owner),
        event=event,
        idempotency_key=f"m7:v{uuid.uuid4().hex[:6]}:{event}:c{channel.pk}",
        payload={**PAYLOAD, "event": event},
        **fields,
    )


def deliver_until_done(notification, limit=10):
    """Runs delivery like the retrying task would, waiting out each backoff."""
    outcomes = []
    for _ in range(limit):
        notification.refresh_from_db()
        time.sleep(max(0.0, (notification.next_attempt_at - timezone.now()).total_seconds()))
        outcome = delivery.deliver(notification.pk)
        outcomes.append(outcome)
        if outcome != "retry":
            break
    notification.refresh_from_db()
    return outcomes


def test_a_webhook_is_signed_and_carries_the_payload_and_idempotency_key(receiver):
    channel = ChannelFactory(config={"url": receiver.url})
    channel.secret = "s3cret"
    channel.save()
    notification = outbox_row(channel)

    assert delivery.deliver(notification.pk) == "sent"

    [hit] = receiver.accepted
    body = hit.json()
    assert body["event"] == "fired"
    assert body["idempotency_key"] == notification.idempotency_key
    assert body["value"] == 41.2
    assert hit.headers["Growalert-Idempotency-Key"] == notification.idempotency_key
    assert hit.headers["Growalert-Event"] == "fired"
    assert webhook.verify("s3cret", hit.body, hit.headers["Growalert-Signature"])
    assert not webhook.verify("wrong", hit.body, hit.headers["Growalert-Signature"])
    notification.refresh_from_db()
    assert notification.status == "sent"
    assert notification.sent_at is not None


def test_500_500_200_is_one_accepted_message_after_three_logged_attempts(receiver):
    receiver.script = [500, 500, 200]
    notification = outbox_row(ChannelFactory(config={"url": receiver.url}))

    outcomes = deliver_until_done(notification)

    assert outcomes == ["retry", "retry", "sent"]
    assert len(receiver.accepted) == 1
    attempts = list(notification.delivery_attempts.values_list("outcome", "status_code"))
    assert attempts == [("transient", 500), ("transient", 500), ("sent", 200)]
    assert notification.status == "sent"


def test_410_is_not_retried_and_repeated_permanent_failures_disable_the_channel(
    receiver, smtp_inbox, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFY_DISABLE_AFTER = 2
    receiver.script = [410]
    owner = UserFactory(email="grower@example.com")
    channel = ChannelFactory(owner=owner, config={"url": receiver.url}, name="farm hook")

    first = outbox_row(channel)
    assert deliver_until_done(first) == ["failed"]
    assert first.status == "failed"
    assert "410" in first.last_error
    channel.refresh_from_db()
    assert channel.enabled
    assert channel.consecutive_permanent_failures == 1

    second = outbox_row(channel)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver_until_done(second) == ["failed"]

    channel.refresh_from_db()
    assert not channel.enabled
    assert "2 deliveries in a row failed" in channel.disabled_reason
    assert len(receiver.hits) == 2  # never retried
    [told] = smtp_inbox.messages
    assert told["To"] == "grower@example.com"
    assert "farm hook" in told["Subject"]

    third = outbox_row(channel)
    assert delivery.deliver(third.pk) == "failed"  # a disabled channel sends nothing
    assert len(receiver.hits) == 2


def test_a_hanging_receiver_times_out_and_is_retried(receiver, monkeypatch):
    import httpx

    monkeypatch.setattr(http, "TIMEOUT", httpx.Timeout(0.3, connect=0.3))
    receiver.hang = 1.0
    notification = outbox_row(ChannelFactory(config={"url": receiver.url}))

    assert delivery.deliver(notification.pk) == "retry"

    attempt = DeliveryAttempt.objects.get(notification=notification)
    assert attempt.outcome == "transient"
    assert "timed out" in attempt.error
    receiver.hang = 0
    assert deliver_until_done(notification)[-1] == "sent"


@pytest.mark.django_db(transaction=True)
def test_a_delivery_run_twice_concurrently_sends_once(receiver):
    receiver.hang = 0.3  # both tasks overlap while the first is sending
    notification = outbox_row(ChannelFactory(config={"url": receiver.url}))
    outcomes: list[str] = []

    def run():
        from django.db import connection

        try:
            outcomes.append(delivery.deliver(notification.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(outcomes) == ["sent", "skipped"]
    assert len(receiver.hits) == 1
    assert delivery.deliver(notification.pk) == "skipped"  # and never again once sent


def test_private_addresses_are_refused_unless_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    notification = outbox_row(ChannelFactory(config={"url": "http://127.0.0.1:9/hook"}))

    assert delivery.deliver(notification.pk) == "failed"

    notification.refresh_from_db()
    assert "private address" in notification.last_error
    with pytest.raises(ValueError, match="private"):
        http.check_url("http://169.254.169.254/latest/meta-data")
    with pytest.raises(ValueError, match="http"):
        http.check_url("file:///etc/passwd")


def test_redirects_to_another_host_are_not_followed(receiver, settings):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.send_response(307)
            self.send_header("Location", receiver.url.replace("127.0.0.1", "localhost"))
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        notification = outbox_row(
            ChannelFactory(config={"url": f"http://127.0.0.1:{server.server_address[1]}/"})
        )
        assert delivery.deliver(notification.pk) == "failed"
    finally:
        server.shutdown()
    notification.refresh_from_db()
    assert "another host" in notification.last_error
    assert receiver.hits == []


def test_email_has_a_text_and_an_html_part_that_explain_the_alert(smtp_inbox):
    channel = ChannelFactory(
        kind=Channel.Kind.EMAIL, config={"addresses": ["a@example.com", "b@example.com"]}
    )
    notification = outbox_row(channel)

    assert delivery.deliver(notification.pk) == "sent"

    [message] = smtp_inbox.messages
    assert smtp_inbox.envelopes[0][1] == ["a@example.com", "b@example.com"]
    assert message["Subject"] == "[FIRING] greenhouse too hot"
    assert message["X-Growalert-Idempotency-Key"] == notification.idempotency_key
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if part.get_content_maintype() == "text"
    }
    assert "above the critical threshold 35" in parts["text/plain"]
    assert "Threshold: above 35" in parts["text/plain"]
    assert "41.2" in parts["text/plain"]
    assert "http://testserver/app/monitors/7" in parts["text/plain"]
    assert '<th scope="row"' in parts["text/html"]
    assert "41.2" in parts["text/html"]


def test_a_refused_email_address_is_a_permanent_failure(smtp_inbox):
    smtp_inbox.refuse.add("gone@example.com")
    channel = ChannelFactory(kind=Channel.Kind.EMAIL, config={"addresses": ["gone@example.com"]})
    notification = outbox_row(channel)

    assert delivery.deliver(notification.pk) == "failed"
    notification.refresh_from_db()
    assert "refused" in notification.last_error


def test_slack_gets_a_formatted_message(receiver):
    channel = ChannelFactory(kind=Channel.Kind.SLACK, config={"url": receiver.url})
    notification = outbox_row(channel, event="resolved")

    assert delivery.deliver(notification.pk) == "sent"

    message = receiver.accepted[0].json()
    assert message["text"].startswith(":large_green_circle: [RESOLVED] greenhouse too hot")
    assert message["blocks"][0]["type"] == "header"
    fields = json.dumps(message["blocks"][2]["fields"])
    assert "Threshold" in fields
    assert message["blocks"][-1]["elements"][0]["url"] == "http://testserver/app/monitors/7"


def test_sms_is_sent_through_twilio_with_the_exact_request(twilio):
    channel = ChannelFactory(kind=Channel.Kind.SMS, config={"phone": "+15551234567"})
    notification = outbox_row(channel)

    assert delivery.deliver(notification.pk) == "sent"

    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form["To"] == "+15551234567"
    assert request.form["From"] == "+15005550006"
    assert request.form["Body"].startswith("[FIRING] greenhouse too hot")
    assert request.form["Body"].endswith("Reply STOP to opt out")
    assert len(request.form["Body"]) <= 320
    attempt = DeliveryAttempt.objects.get(notification=notification)
    assert attempt.status_code == 201


def test_an_unsubscribed_number_disables_the_sms_channel_at_once(twilio):
    twilio.unsubscribed.add("+15551234567")
    channel = ChannelFactory(kind=Channel.Kind.SMS, config={"phone": "+15551234567"})

    assert delivery.deliver(outbox_row(channel).pk) == "failed"

    channel.refresh_from_db()
    assert not channel.enabled
    assert channel.opted_out_at is not None
    assert "STOP" in channel.disabled_reason
