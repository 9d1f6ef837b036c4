"""The channel ids in an answer are the monitor's channels after the request, not before."""

from __future__ import annotations

import pytest

from tests.factories import ChannelFactory, MonitorFactory

pytestmark = pytest.mark.django_db


def test_a_patch_answers_with_the_channels_it_set(alice, api_client_for) -> None:
    first, second = ChannelFactory(owner=alice), ChannelFactory(owner=alice)
    monitor = MonitorFactory(owner=alice)
    monitor.channels.set([first])

    patched = api_client_for(alice).patch(
        f"/monitors/{monitor.pk}", {"channels": [second.pk]}, format="json"
    )

    assert patched.status_code == 200, patched.json()
    assert patched.json()["channels"] == [second.pk]
