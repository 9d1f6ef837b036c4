"""The channel service's write rules (monitors/notify/channels.py), through the API that calls
it: a kind never changes, a new phone number is verified again, the secret is kept, replaced
or removed, enabling a channel clears why it was disabled, and a refused config is a field
error inside ``config``."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from monitors.models import Channel
from monitors.notify import channels
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
