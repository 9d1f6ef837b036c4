"""Crash recovery and the SSRF guard's address pinning: the sweeper finds rows whose task was
lost or whose worker died mid-send, a re-send keeps its idempotency key, a stale worker never
overwrites the row's current holder, and the checked address is the one connected to."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from django.utils import timezone

from monitors import outbound
from monitors.models import Notification
from monitors.notify import delivery, http, tasks
from monitors.notify.base import PermanentError, TransientError
from tests.factories import ChannelFactory
from tests.notify.test_delivery import outbox_row

pytestmark = pytest.mark.django_db


def test_the_task_run_twice_sends_one_message(receiver):
    notification = outbox_row(ChannelFactory(config={"url": receiver.url}))

    assert tasks.deliver_notification(str(notification.pk)) == "sent"
    assert tasks.deliver_notification(str(notification.pk)) == "skipped"

    assert len(receiver.hits) == 1


def test_the_sweeper_redelivers_a_row_whose_worker_died_mid_send_with_the_same_key(receiver, eager):
    notification = outbox_row(ChannelFactory(config={"url": receiver.url}))
    long_ago = timezone.now() - timedelta(minutes=5)
    # What a worker killed after claiming leaves behind: "sending", lease run out.
    Notification.objects.filter(pk=notification.pk).update(
        status="sending", claimed_until=long_ago, attempts=1, next_attempt_at=long_ago
    )

    assert tasks.deliver_due_notifications() == 1

    notification.refresh_from_db()
    assert notification.status == "sent"
    [hit] = receiver.accepted
    assert hit.headers["Growalert-Idempotency-Key"] == notification.idempotency_key
    # The killed attempt is in the log too, so ``attempts`` and the log agree.
    assert list(notification.delivery_attempts.values_list("number", "outcome")) == [
        (1, "unknown"),
        (2, "sent"),
    ]
    lost = notification.delivery_attempts.get(number=1)
    assert "stopped before recording the outcome" in lost.error
    assert lost.duration_ms is None
    assert notification.attempts == 2


def test_the_sweeper_leaves_fresh_rows_and_live_leases_alone(receiver, eager):
    channel = ChannelFactory(config={"url": receiver.url})
    outbox_row(channel)  # just written: its own task is on the way
    held = outbox_row(channel)
    Notification.objects.filter(pk=held.pk).update(
        status="sending",
        claimed_until=timezone.now() + timedelta(seconds=30),
        next_attempt_at=timezone.now() - timedelta(minutes=5),
    )

    assert tasks.deliver_due_notifications() == 0
    assert receiver.hits == []


def test_a_claim_returns_the_row_as_the_orm_loads_it_and_lets_only_one_through(receiver):
    channel = ChannelFactory(config={"url": receiver.url})
    channel.secret = "s3cret"
    channel.save()
    notification = outbox_row(channel)

    claimed = delivery.claim(notification.pk)
    again = delivery.claim(notification.pk)

    assert claimed is not None
    assert again is None
    stored = Notification.objects.select_related("channel").get(pk=notification.pk)
    fields = [f.attname for f in Notification._meta.concrete_fields]
    assert [getattr(claimed, f) for f in fields] == [getattr(stored, f) for f in fields]
    assert (claimed.status, claimed.attempts) == ("sending", 1)
    assert isinstance(claimed.payload, dict)
    assert claimed.payload == notification.payload
    assert claimed.channel.config == {"url": receiver.url}
    assert claimed.channel.secret == "s3cret"
    assert not claimed._state.adding


def test_a_worker_whose_lease_ran_out_does_not_overwrite_the_new_holder(receiver):
    receiver.script = [500]
    notification = outbox_row(ChannelFactory(config={"url": receiver.url}))
    claimed = delivery.claim(notification.pk)
    assert claimed is not None
    # Meanwhile the lease ran out and another worker took the row.
    Notification.objects.filter(pk=notification.pk).update(
        claimed_until=timezone.now() + timedelta(seconds=45)
    )

    outcome = delivery._record(
        claimed, None, TransientError("HTTP 500"), started=timezone.now(), duration_ms=1
    )

    assert outcome == "skipped"
    notification.refresh_from_db()
    assert notification.status == "sending"  # still the other worker's


def test_the_connection_goes_to_the_checked_address_with_the_name_in_host(
    receiver, settings, monkeypatch
):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    port = receiver.server.server_address[1]
    # "hooks.example.test" resolves (here) to loopback, which the policy is told to accept:
    # the request must reach that address, never a second lookup's answer.
    monkeypatch.setattr(outbound, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")])
    monkeypatch.setattr(outbound, "is_public", lambda address: True)

    sent = http.post(f"http://hooks.example.test:{port}/hook", content=b"{}", headers={})

    assert sent.status_code == 200
    assert receiver.hits[0].headers["Host"] == f"hooks.example.test:{port}"


def test_a_name_with_any_private_address_is_refused(settings, monkeypatch):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    addresses = [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.7")]
    monkeypatch.setattr(outbound, "resolve", lambda host, port: addresses)

    with pytest.raises(ValueError, match=r"private address \(10\.0\.0\.7\)"):
        http.check_url("https://rebind.example.test/hook")
    with pytest.raises(PermanentError, match="refused"):
        http.post("https://rebind.example.test/hook", content=b"{}", headers={})


def test_https_targets_keep_the_name_for_sni_and_the_host_header(settings, monkeypatch):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    monkeypatch.setattr(
        outbound, "resolve", lambda host, port: [ipaddress.ip_address("2606:4700::6810:85e5")]
    )

    target = http.pin("https://user:pw@hooks.example.test:8443/in?x=1")

    assert target.url == "https://user:pw@[2606:4700::6810:85e5]:8443/in?x=1"
    assert target.headers == {"Host": "hooks.example.test:8443"}
    assert target.extensions == {"sni_hostname": "hooks.example.test"}
