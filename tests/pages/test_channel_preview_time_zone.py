"""A channel's message preview without a real alert (the sample) shows its times in the
owner's time zone, as real alerts do (monitors/notify/local_time.py reads ``time_zone``)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Profile
from monitors.models import Channel
from monitors.notify import templating
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db
TEMPLATE = "dry since {since}, told at {time}"


def preview_of(client: Client, channel: Channel) -> str:
    page: str = client.get(f"/app/channels/{channel.pk}").content.decode()
    assert "With a sample alert" in page
    start = page.index('data-testid="preview-body"')
    return page[start : page.index("</", start)]


def test_the_sample_preview_shows_times_in_the_owners_time_zone(client_for, alice):
    Profile.objects.update_or_create(user=alice, defaults={"time_zone": "Europe/Amsterdam"})
    channel = ChannelFactory(owner=alice, kind="email", body_template=TEMPLATE)

    shown = preview_of(client_for(alice), channel)

    assert "dry since 2026-12-02 02:15 CET, told at 2026-12-02 02:27 CET" in shown
    assert "UTC" not in shown


def test_the_sample_preview_follows_the_zone_while_typing(client_for, alice):
    Profile.objects.update_or_create(user=alice, defaults={"time_zone": "Asia/Tokyo"})
    channel = ChannelFactory(owner=alice, kind="email")

    page = client_for(alice).post(
        f"/app/channels/{channel.pk}",
        {"action": "preview", "subject_template": "{time}", "body_template": TEMPLATE},
    )

    assert "dry since 2026-12-02 10:15 JST, told at 2026-12-02 10:27 JST" in page.content.decode()


def test_an_owner_without_a_time_zone_sees_utc(client_for, alice):
    Profile.objects.filter(user=alice).delete()
    channel = ChannelFactory(owner=alice, kind="email", body_template=TEMPLATE)

    shown = preview_of(client_for(alice), channel)

    assert "dry since 2026-12-02 01:15 UTC, told at 2026-12-02 01:27 UTC" in shown


def test_the_sample_payload_carries_the_zone_it_is_given():
    assert templating.sample_payload("http://x", time_zone="Europe/Oslo")["time_zone"] == (
        "Europe/Oslo"
    )
    assert templating.sample_payload("http://x")["time_zone"] == "UTC"
