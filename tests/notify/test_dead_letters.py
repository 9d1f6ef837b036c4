"""Long outages: retries for hours within a time budget (time simulated with time-machine), the
dead-letter list and its retry (API and page), and the owner told once by another channel when
a channel keeps failing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from monitors.models import Channel, Notification
from monitors.notify import delivery
from tests.factories import ChannelFactory, UserFactory
from tests.notify.conftest import Receiver
from tests.notify.test_delivery import outbox_row

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def real_backoff(settings):
    """The production retry schedule (the receiver fixture shortens the first delay)."""
    settings.NOTIFY_RETRY_BASE_SECONDS = 2.0
    settings.NOTIFY_RETRY_MAX_SECONDS = 3600.0
    settings.NOTIFY_RETRY_FOR_HOURS = 72.0
    # The receiver's circuit breaker (tests/notify/test_receiver_limits.py) counts in Redis in
    # real time, which the jumping clock here does not move: kept shut, every try is an attempt.
    settings.NOTIFY_BREAKER_FAILURES = 10_000


def deliver_through_time(traveller, notification, limit=500):
    """Delivers like the retrying task would, jumping the clock to each next attempt."""
    outcomes = []
    for _ in range(limit):
        outcome = delivery.deliver(notification.pk)
        outcomes.append(outcome)
        if outcome != "retry":
            break
        notification.refresh_from_db()
        traveller.move_to(notification.next_attempt_at)
    notification.refresh_from_db()
    return outcomes


def test_a_receiver_failing_for_hours_still_gets_the_notification_once(receiver, real_backoff):
    receiver.script = [500] * 20 + [200]  # the old schedule gave up after 8 attempts (~4 min)
    with time_machine.travel(START, tick=True) as traveller:
        notification = outbox_row(ChannelFactory(config={"url": receiver.url}))
        outcomes = deliver_through_time(traveller, notification)
        delivered_after = notification.sent_at - notification.created_at

    assert outcomes == ["retry"] * 20 + ["sent"]
    assert len(receiver.accepted) == 1
    assert notification.status == "sent"
    assert delivered_after > timedelta(hours=3)  # backoff capped at 1 h, not given up
    assert notification.delivery_attempts.count() == 21
    keys = {hit.headers["Growalert-Idempotency-Key"] for hit in receiver.hits}
    assert keys == {notification.idempotency_key}


def test_retries_stop_when_the_time_budget_is_spent_and_the_row_is_a_dead_letter(
    receiver, real_backoff
):
    receiver.script = [503]
    with time_machine.travel(START, tick=True) as traveller:
        notification = outbox_row(ChannelFactory(config={"url": receiver.url}))
        outcomes = deliver_through_time(traveller, notification)

    assert outcomes[-1] == "failed"
    assert notification.status == "failed"
    last = notification.delivery_attempts.order_by("-number").first()
    budget_end = notification.created_at + timedelta(hours=72)
    assert budget_end <= last.started_at < budget_end + timedelta(minutes=1)
    gaps = [
        (b - a).total_seconds()
        for a, b in zip(
            *[
                list(notification.delivery_attempts.values_list("started_at", flat=True))[i:]
                for i in (0, 1)
            ],
            strict=False,
        )
    ]
    assert max(gaps) <= 3600 + 5  # backoff capped at an hour
    assert 72 < notification.attempts < 200  # bounded, far from the column's limit


@pytest.fixture
def owner():
    return UserFactory(username="grower", email="grower@example.com")


@pytest.fixture
def api(owner):
    client = APIClient()
    client.force_authenticate(owner)
    return client


def dead_letter(channel, receiver):
    """A notification that failed for good (410), then the receiver is fixed."""
    receiver.script = [410] * (len(receiver.hits) + 1) + [200]
    notification = outbox_row(channel)
    assert delivery.deliver(notification.pk) == "failed"
    return notification


def test_dead_letters_are_listed_and_retried_through_the_api_with_their_key(
    api, owner, receiver, eager, django_capture_on_commit_callbacks
):
    channel = ChannelFactory(owner=owner, config={"url": receiver.url})
    dead = dead_letter(channel, receiver)
    outbox_row(channel, event="resolved")  # pending: not a dead letter

    listed = api.get(f"/channels/{channel.pk}/dead-letters")
    assert listed.status_code == 200
    [row] = listed.json()["results"]
    assert row["id"] == str(dead.pk)
    assert row["status"] == "failed"
    assert row["delivery_attempts"][0]["status_code"] == 410

    with django_capture_on_commit_callbacks(execute=True):
        retried = api.post(f"/channels/{channel.pk}/dead-letters/retry", {}, format="json")

    assert retried.status_code == 202
    assert retried.json() == {"retried": 1, "remaining": 0}
    dead.refresh_from_db()
    assert dead.status == "sent"
    assert [hit.headers["Growalert-Idempotency-Key"] for hit in receiver.hits] == [
        dead.idempotency_key,
        dead.idempotency_key,
    ]
    assert api.get(f"/channels/{channel.pk}/dead-letters").json()["results"] == []


def test_one_dead_letter_can_be_retried_by_id_and_a_disabled_channel_refuses(api, owner, receiver):
    channel = ChannelFactory(owner=owner, config={"url": receiver.url})
    first = dead_letter(channel, receiver)
    second = dead_letter(channel, receiver)

    response = api.post(
        f"/channels/{channel.pk}/dead-letters/retry",
        {"notifications": [str(second.pk)]},
        format="json",
    )

    assert response.json() == {"retried": 1, "remaining": 1}
    assert Notification.objects.get(pk=second.pk).status == "pending"
    assert Notification.objects.get(pk=first.pk).status == "failed"
    Channel.objects.filter(pk=channel.pk).update(enabled=False, disabled_reason="gone")
    refused = api.post(f"/channels/{channel.pk}/dead-letters/retry", {}, format="json")
    assert refused.status_code == 409
    assert "disabled" in refused.json()["detail"]
    bad = api.post(
        f"/channels/{channel.pk}/dead-letters/retry", {"notifications": ["x"]}, format="json"
    )
    assert bad.status_code == 400


def test_another_customers_dead_letters_are_a_404(api, receiver):
    theirs = ChannelFactory(config={"url": receiver.url})
    dead = dead_letter(theirs, receiver)

    assert api.get(f"/channels/{theirs.pk}/dead-letters").status_code == 404
    assert api.post(f"/channels/{theirs.pk}/dead-letters/retry").status_code == 404
    assert Notification.objects.get(pk=dead.pk).status == "failed"


def test_the_dead_letters_are_in_the_openapi_schema(api):
    schema = api.get("/api/schema")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/channels/{id}/dead-letters" in text
    assert "/channels/{id}/dead-letters/retry" in text
    assert "DeadLetterRetryResult" in text


def test_the_channels_page_lists_dead_letters_and_retries_them(owner, receiver):
    channel = ChannelFactory(owner=owner, config={"url": receiver.url}, name="farm hook")
    dead = dead_letter(channel, receiver)
    healthy = ChannelFactory(owner=owner, config={"url": receiver.url}, name="backup")
    client = Client()
    client.force_login(owner)

    page = client.get("/app/channels").content.decode()

    assert "Failed deliveries to “farm hook”" in page
    assert f'data-dead-letter="{dead.pk}"' in page
    assert "HTTP 410" in page or "410" in page
    assert f"/app/channels/{channel.pk}/retry" in page
    assert f"/app/channels/{healthy.pk}/retry" not in page

    response = client.post(f"/app/channels/{channel.pk}/retry", follow=True)

    assert "are being sent again" in response.content.decode()
    assert Notification.objects.get(pk=dead.pk).status == "pending"
    other = UserFactory()
    client.force_login(other)
    assert client.post(f"/app/channels/{channel.pk}/retry").status_code == 404


@pytest.fixture
def backup_receiver():
    server = Receiver()
    yield server
    server.close()


def test_the_owner_is_told_once_by_another_channel_when_a_channel_keeps_failing(
    owner, receiver, backup_receiver, real_backoff, eager, django_capture_on_commit_callbacks
):
    receiver.script = [500]
    failing = ChannelFactory(owner=owner, config={"url": receiver.url}, name="farm hook")
    backup = ChannelFactory(owner=owner, config={"url": backup_receiver.url}, name="backup")
    with time_machine.travel(START, tick=True) as traveller:
        notification = outbox_row(failing)
        with django_capture_on_commit_callbacks(execute=True):
            assert delivery.deliver(notification.pk) == "retry"
        assert backup_receiver.hits == []  # one failure is not a failing channel

        for minutes in (16, 30, 60):  # failing for a quarter of an hour, then longer
            traveller.move_to(START + timedelta(minutes=minutes))
            Notification.objects.filter(pk=notification.pk).update(
                next_attempt_at=START + timedelta(minutes=minutes)
            )
            with django_capture_on_commit_callbacks(execute=True):
                assert delivery.deliver(notification.pk) == "retry"

    [told] = backup_receiver.accepted
    body = told.json()
    assert body["event"] == "channel_failing"
    assert "farm hook" in body["monitor"]["name"]
    assert "HTTP 500" in body["reason"]
    assert Notification.objects.filter(channel=backup, event="channel_failing").count() == 1
    failing.refresh_from_db()
    assert failing.owner_told_at is not None

    receiver.script = [200]
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=START)
    assert delivery.deliver(notification.pk) == "sent"
    failing.refresh_from_db()
    assert (failing.failing_since, failing.owner_told_at) == (None, None)  # a new streak next


def test_with_no_other_channel_the_owner_is_emailed_once(
    owner, receiver, smtp_inbox, real_backoff, django_capture_on_commit_callbacks
):
    receiver.script = [502]
    failing = ChannelFactory(owner=owner, config={"url": receiver.url}, name="farm hook")
    with time_machine.travel(START, tick=True) as traveller:
        notification = outbox_row(failing)
        for minutes in (0, 20, 40):
            traveller.move_to(START + timedelta(minutes=minutes))
            Notification.objects.filter(pk=notification.pk).update(next_attempt_at=START)
            with django_capture_on_commit_callbacks(execute=True):
                delivery.deliver(notification.pk)

    [message] = smtp_inbox.messages
    assert message["To"] == "grower@example.com"
    assert message["Subject"].strip() == "[growalert] Channel “farm hook” keeps failing"
