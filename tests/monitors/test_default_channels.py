"""A channel marked "default for new monitors": POST /monitors without ``channels`` attaches
the account's default channels, ``channels: []`` attaches none, a list names exactly its own;
an edit without ``channels`` keeps them. Another customer's defaults play no part."""

from __future__ import annotations

import pytest

from tests.factories import ChannelFactory, SourceFactory
from tests.monitors.test_api import monitor_body

pytestmark = pytest.mark.django_db


def test_a_monitor_created_without_channels_gets_the_default_ones(alice, bob, api_client_for):
    source = SourceFactory(owner=alice)
    pager = ChannelFactory(owner=alice, name="pager", default_for_new_monitors=True)
    ChannelFactory(owner=alice, name="archive")
    ChannelFactory(owner=bob, name="bob's default", default_for_new_monitors=True)
    client = api_client_for(alice)

    created = client.post("/monitors", monitor_body(source), format="json")

    assert created.status_code == 201, created.json()
    assert created.json()["channels"] == [pager.pk]
    edited = client.patch(f"/monitors/{created.json()['id']}", {"critical": 31}, format="json")
    assert edited.json()["channels"] == [pager.pk]


def test_an_empty_or_named_channel_list_is_taken_as_given(alice, api_client_for):
    source = SourceFactory(owner=alice)
    ChannelFactory(owner=alice, default_for_new_monitors=True)
    other = ChannelFactory(owner=alice)
    client = api_client_for(alice)

    none = client.post("/monitors", monitor_body(source, channels=[]), format="json")
    named = client.post("/monitors", monitor_body(source, channels=[other.pk]), format="json")

    assert none.json()["channels"] == []
    assert named.json()["channels"] == [other.pk]


def test_the_flag_is_set_and_read_through_the_channels_api(alice, api_client_for):
    client = api_client_for(alice)
    created = client.post(
        "/channels",
        {
            "name": "pager",
            "kind": "email",
            "config": {"addresses": ["night@example.com"]},
            "default_for_new_monitors": True,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["default_for_new_monitors"] is True
    channel_id = created.json()["id"]
    off = client.patch(
        f"/channels/{channel_id}", {"default_for_new_monitors": False}, format="json"
    )
    assert off.json()["default_for_new_monitors"] is False
