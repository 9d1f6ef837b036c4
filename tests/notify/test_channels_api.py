"""The channels API: per-kind validation, write-only secrets, test notifications, SMS
verification and STOP, the delivery log; the channel service's write rules (a fixed kind, a new
phone verified again, the secret kept, replaced or removed, enabling clears the disabled
reason)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from monitors.models import Channel
from monitors.notify import channels
from monitors.notify import twilio as twilio_gateway
from tests.factories import ChannelFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return UserFactory(username="grower")


@pytest.fixture
def api(owner):
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.mark.parametrize(
    ("kind", "config", "field", "message"),
    [
        ("email", {"addresses": []}, "addresses", "one or more"),
        ("email", {"addresses": ["not-an-address"]}, "addresses", "not a valid email"),
        ("webhook", {}, "url", "required"),
        ("webhook", {"url": "ftp://example.com"}, "url", "http(s)"),
        ("slack", {"url": "https://example.com/x"}, "url", "hooks.slack.com"),
        ("sms", {"phone": "0711 555"}, "phone", "international number"),
    ],
)
def test_each_kind_validates_its_config_with_field_errors(
    api, settings, kind, config, field, message
):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    response = api.post("/channels", {"name": "x", "kind": kind, "config": config}, format="json")
    assert response.status_code == 400
    [error] = response.json()["config"][field]
    assert message in error


def test_private_webhook_urls_are_refused_at_creation(api, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    response = api.post(
        "/channels",
        {"name": "x", "kind": "webhook", "config": {"url": "http://10.0.0.5/hook"}},
        format="json",
    )
    assert response.status_code == 400
    assert "private address" in str(response.json())


def test_webhook_secrets_are_write_only(api, receiver):
    response = api.post(
        "/channels",
        {"name": "farm", "kind": "webhook", "config": {"url": receiver.url}, "secret": "s3"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert "secret" not in body
    assert body["has_secret"] is True
    assert "s3" not in str(api.get(f"/channels/{body['id']}").json())
    assert Channel.objects.get(pk=body["id"]).secret == "s3"


def test_send_test_notification_and_read_the_delivery_log(api, owner, receiver):
    channel = ChannelFactory(owner=owner, config={"url": receiver.url})

    response = api.post(f"/channels/{channel.pk}/test")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "sent"
    assert receiver.accepted[0].json()["event"] == "test"
    log = api.get(f"/channels/{channel.pk}/deliveries").json()["results"]
    assert log[0]["event"] == "test"
    assert log[0]["delivery_attempts"][0]["status_code"] == 200


def test_a_failing_test_notification_says_why(api, owner, receiver):
    receiver.script = [404]
    channel = ChannelFactory(owner=owner, config={"url": receiver.url})

    response = api.post(f"/channels/{channel.pk}/test")

    assert response.status_code == 502
    assert "HTTP 404" in response.json()["last_error"]
    channel.refresh_from_db()
    assert channel.enabled  # a test never counts towards disabling


def test_another_customers_channel_is_a_404(api):
    other = ChannelFactory()
    assert api.get(f"/channels/{other.pk}").status_code == 404
    assert api.post(f"/channels/{other.pk}/test").status_code == 404


def test_an_sms_number_must_be_verified_with_a_texted_code(api, twilio):
    created = api.post(
        "/channels",
        {"name": "phone", "kind": "sms", "config": {"phone": "+1 555 123 4567"}},
        format="json",
    ).json()
    assert created["config"] == {"phone": "+15551234567"}
    assert created["verified"] is False

    assert api.post(f"/channels/{created['id']}/send-verification").status_code == 202
    [sent] = twilio.requests
    code = sent.form["Body"].split("code is ")[1][:6]
    assert "Reply STOP" in sent.form["Body"]

    wrong = api.post(f"/channels/{created['id']}/verify", {"code": "000000"}, format="json")
    assert wrong.status_code == 400
    right = api.post(f"/channels/{created['id']}/verify", {"code": code}, format="json")
    assert right.status_code == 200
    assert right.json()["verified"] is True


def test_a_stop_reply_opts_the_number_out_and_start_opts_back_in(client, twilio, owner):
    channel = ChannelFactory(owner=owner, kind="sms", config={"phone": "+15551234567"})
    url = "http://testserver/webhooks/twilio/sms"
    form = {"From": "+15551234567", "Body": " stop "}

    forged = client.post(url, form, HTTP_X_TWILIO_SIGNATURE="nope")
    assert forged.status_code == 403

    response = client.post(url, form, HTTP_X_TWILIO_SIGNATURE=twilio_gateway.signature(url, form))
    assert response.status_code == 200
    channel.refresh_from_db()
    assert channel.opted_out_at is not None
    assert not channel.enabled

    form = {"From": "+15551234567", "Body": "START"}
    client.post(url, form, HTTP_X_TWILIO_SIGNATURE=twilio_gateway.signature(url, form))
    channel.refresh_from_db()
    assert channel.enabled
    assert channel.opted_out_at is None


# The channel service's write rules (monitors/notify/channels.py), through the API and direct.


def test_a_channels_kind_cannot_change(api, owner):
    channel = ChannelFactory(owner=owner)

    response = api.patch(f"/channels/{channel.pk}", {"kind": "email"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"kind": [channels.KIND_FIXED]}
    channel.refresh_from_db()
    assert channel.kind == Channel.Kind.WEBHOOK


def test_a_new_phone_number_is_unverified_the_same_one_stays_verified(api, owner):
    channel = ChannelFactory(owner=owner, kind="sms", config={"phone": "+15551234567"})
    assert channel.verified

    same = api.patch(
        f"/channels/{channel.pk}", {"config": {"phone": "+1 555 123 4567"}}, format="json"
    )
    assert same.json()["verified"] is True
    moved = api.patch(
        f"/channels/{channel.pk}", {"config": {"phone": "+15557654321"}}, format="json"
    )
    assert moved.status_code == 200
    assert moved.json()["verified"] is False
    assert moved.json()["config"] == {"phone": "+15557654321"}


def test_the_secret_is_kept_replaced_or_removed(api, owner, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    channel = channels.channel_create(
        owner=owner,
        name="farm",
        kind="webhook",
        config={"url": "http://127.0.0.1:9/h"},
        secret="s1",
    )

    api.patch(f"/channels/{channel.pk}", {"name": "farm 2"}, format="json")
    channel.refresh_from_db()
    assert channel.secret == "s1"
    api.patch(f"/channels/{channel.pk}", {"secret": "s2"}, format="json")
    channel.refresh_from_db()
    assert channel.secret == "s2"
    removed = api.patch(f"/channels/{channel.pk}", {"secret": ""}, format="json").json()
    assert removed["has_secret"] is False
    assert "s2" not in str(removed)


def test_enabling_a_channel_clears_why_it_was_disabled(api, owner):
    channel = ChannelFactory(
        owner=owner,
        enabled=False,
        disabled_reason="the receiver answered 410",
        consecutive_permanent_failures=5,
        failing_since=timezone.now(),
    )

    response = api.patch(f"/channels/{channel.pk}", {"enabled": True}, format="json")

    assert response.json()["disabled_reason"] == ""
    channel.refresh_from_db()
    assert (channel.enabled, channel.consecutive_permanent_failures) == (True, 0)
    assert channel.failing_since is None


def test_the_service_refuses_a_config_as_an_error_on_config(owner, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    channel = ChannelFactory(owner=owner, config={"url": "https://example.com/hook"})

    with pytest.raises(ValidationError) as created:
        channels.channel_create(owner=owner, name="x", kind="email", config={"addresses": []})
    with pytest.raises(channels.ConfigError) as updated:
        channels.channel_update(channel=channel, config={"url": "http://10.0.0.5/hook"})

    assert list(created.value.message_dict) == ["config"]
    assert "one or more" in created.value.message_dict["config"][0]
    assert updated.value.key == "url"
    assert "private address" in updated.value.text
    channel.refresh_from_db()
    assert channel.config == {"url": "https://example.com/hook"}
    assert not Channel.objects.filter(name="x").exists()
