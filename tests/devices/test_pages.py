"""The devices pages (test client, real Postgres, Redis and InfluxDB): the list, registering by
claim code, adding a device (its key shown once), a device's status, latest values and chart."""

from __future__ import annotations

import time

import pytest

from billing.gating import comp
from devices import services
from devices.models import Device
from tests.devices.ingest_helpers import flush, post


@pytest.fixture
def grower(django_user_model):
    user = django_user_model.objects.create_user("grower", "g@example.com", "pw-long-enough")
    comp(user)
    return user


@pytest.fixture
def signed_in(client, grower):
    client.force_login(grower)
    return client


@pytest.mark.django_db
def test_a_device_page_shows_status_latest_values_and_a_chart(signed_in, grower):
    device, key = services.device_add(owner=grower, name="Bench 7", greenhouse="North")
    now = int(time.time() * 1000)
    events = [
        {
            "event_type": "gro01",
            "data": {"temperature": 20.0 + i, "humidity": 55.5, "battery": 77, "rssi": -71},
            "tags": {"firmware": "2.0.1"},
            "timestamp": now - 60_000 * (5 - i),
        }
        for i in range(6)
    ]
    assert post(signed_in, {"events": events}, key=key).status_code == 202
    flush()

    page = signed_in.get(f"/app/devices/{device.pk}").content.decode()

    assert "Bench 7" in page
    assert "77 %" in page
    assert "-71 dBm" in page
    assert "2.0.1" in page
    assert '<dt>temperature</dt><dd class="value">25</dd>' in page  # the newest reading
    assert "<svg" in page
    assert "No data to chart" not in page
    listing = signed_in.get("/app/devices").content.decode()
    assert "Bench 7" in listing
    assert "North" in listing


@pytest.mark.django_db
def test_adding_a_device_shows_its_key_once(signed_in, grower):
    response = signed_in.post(
        "/app/devices", {"action": "add", "add-name": "DIY probe", "add-zone": "Z2"}, follow=True
    )
    device = Device.objects.get(owner=grower)
    page = response.content.decode()
    assert 'data-testid="new-key"' in page
    assert device.ingest_key_prefix in page
    again = signed_in.get(f"/app/devices/{device.pk}").content.decode()
    assert 'data-testid="new-key"' not in again


@pytest.mark.django_db
def test_registering_by_claim_code_and_refusing_an_unknown_one(signed_in, grower):
    stock, _ = services._create(name="GRO-01 (stock)")
    response = signed_in.post(
        "/app/devices",
        {"action": "register", "register-code": stock.claim_code, "register-name": "Nursery"},
        follow=True,
    )
    stock.refresh_from_db()
    assert stock.owner_id == grower.pk
    assert "Nursery" in response.content.decode()

    refused = signed_in.post(
        "/app/devices", {"action": "register", "register-code": "ZZZZ-ZZZZ-ZZZZ"}
    )
    assert refused.status_code == 400
    assert services.NOT_FOUND in refused.content.decode()


@pytest.mark.django_db
def test_another_accounts_device_is_not_found(signed_in, django_user_model):
    other = django_user_model.objects.create_user("other", "o@example.com", "pw-long-enough")
    device, _ = services.device_add(owner=other, name="Theirs")
    assert signed_in.get(f"/app/devices/{device.pk}").status_code == 404
    assert signed_in.post(f"/app/devices/{device.pk}/key").status_code == 404
    assert "Theirs" not in signed_in.get("/app/devices").content.decode()


@pytest.mark.django_db
def test_renaming_is_bounded(signed_in, grower):
    device, _ = services.device_add(owner=grower, name="Old")
    bad = signed_in.post(f"/app/devices/{device.pk}", {"name": "x" * 101})
    assert bad.status_code == 400
    ok = signed_in.post(f"/app/devices/{device.pk}", {"name": "New", "zone": "B"}, follow=True)
    assert ok.status_code == 200
    device.refresh_from_db()
    assert (device.name, device.zone) == ("New", "B")
