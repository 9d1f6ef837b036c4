"""The channels API: per-kind validation, write-only secrets, test notifications, SMS
verification and STOP, the delivery log."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from monitors.models import Channel
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
