"""Device health alerts reach the channels that ask for them, including channels added after
the devices (Channel.device_health, on by default), and follow a device's new name."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from billing.gating import comp
from devices import health, services
from monitors import services as monitor_services
from monitors.models import Channel, Monitor, Notification, Status
from monitors.notify import channels as channel_services
from tests.devices.test_health import send, tick
from tests.notify.conftest import Inbox, eager, smtp_inbox  # noqa: F401 (fixtures)

Kind = Monitor.HealthKind


@pytest.fixture
def grower(django_user_model):
    user = django_user_model.objects.create_user("grower", "grower@example.com", "pw-long-enough")
    comp(user)
    return user


def channels_of(monitor: Monitor) -> set[str]:
    return set(monitor.channels.values_list("name", flat=True))


@pytest.mark.django_db
def test_a_channel_added_after_the_devices_gets_their_health_alerts(grower):
    first, _ = services.device_add(owner=grower, name="north")
    second, _ = services.device_add(owner=grower, name="south")
    channel_services.channel_create(
        owner=grower, name="ops", kind="email", config={"addresses": ["ops@example.com"]}
    )
    for monitor in Monitor.objects.filter(device__in=[first, second]):
        assert channels_of(monitor) == {health.ACCOUNT_EMAIL, "ops"}
    third, _ = services.device_add(owner=grower, name="east")  # and the devices after it
    for monitor in Monitor.objects.filter(device=third):
        assert channels_of(monitor) == {health.ACCOUNT_EMAIL, "ops"}
    ordinary = monitor_services.monitor_create(
        owner=grower,
        source=health_monitor_source(first),
        name="too hot",
        measurement="gro01",
        field="temperature",
        aggregation="mean",
        window=timedelta(minutes=5),
        interval=timedelta(minutes=1),
        comparator="above",
        critical=30.0,
    )
    channel_services.channel_create(
        owner=grower, name="later", kind="email", config={"addresses": ["l@example.com"]}
    )
    assert channels_of(ordinary) == set()  # only device health monitors are joined


def health_monitor_source(device):
    return Monitor.objects.filter(device=device)[0].source


@pytest.mark.django_db
def test_a_channel_without_device_health_is_left_out_and_can_be_switched_on_and_off(grower):
    device, _ = services.device_add(owner=grower, name="north")
    quiet = channel_services.channel_create(
        owner=grower,
        name="billing only",
        kind="email",
        config={"addresses": ["b@example.com"]},
        device_health=False,
    )
    services.device_add(owner=grower, name="south")
    assert not quiet.monitors.exists()

    channel_services.channel_update(channel=quiet, device_health=True)
    assert quiet.monitors.count() == 6
    offline = Monitor.objects.get(device=device, health_kind=Kind.OFFLINE)
    assert "billing only" in channels_of(offline)

    channel_services.channel_update(channel=quiet, device_health=False)
    assert not quiet.monitors.exists()
    assert channels_of(offline) == {health.ACCOUNT_EMAIL}


@pytest.mark.django_db
def test_the_api_and_the_page_set_device_health(client, grower):
    device, _ = services.device_add(owner=grower, name="north")
    api = APIClient()
    api.force_authenticate(grower)
    made = api.post(
        "/channels",
        {"name": "hook", "kind": "email", "config": {"addresses": ["h@example.com"]},
         "device_health": False},
        format="json",
    )  # fmt: skip
    assert made.status_code == 201, made.json()
    assert made.json()["device_health"] is False
    hook = Channel.objects.get(pk=made.json()["id"])
    assert not hook.monitors.exists()
    changed = api.patch(f"/channels/{hook.pk}", {"device_health": True}, format="json")
    assert changed.json()["device_health"] is True
    assert hook.monitors.count() == 3

    client.force_login(grower)
    page = client.get("/app/channels").content.decode()
    assert re.search(r'<input[^>]*name="device_health"[^>]*checked', page)  # ticked by default
    client.post(
        "/app/channels",
        {"name": "night", "kind": "email", "target": "n@example.com", "device_health": "on"},
    )
    client.post(
        "/app/channels", {"name": "accounts", "kind": "email", "target": "a@example.com"}
    )  # unticked
    assert Channel.objects.get(name="night").monitors.count() == 3
    assert not Channel.objects.get(name="accounts").monitors.exists()
    client.post(f"/app/channels/{hook.pk}/device-health", {"on": "0"})
    assert not hook.monitors.exists()
    assert Monitor.objects.filter(device=device).count() == 3


@pytest.mark.django_db
def test_renaming_a_device_renames_its_health_monitors_but_not_names_the_owner_chose(grower):
    device, _ = services.device_add(owner=grower, name="north")
    battery = Monitor.objects.get(device=device, health_kind=Kind.BATTERY_LOW)
    monitor_services.monitor_update(monitor=battery, name="north: replace the batteries")

    services.device_update(device=device, name="north bench 2")

    names = {m.health_kind: m.name for m in Monitor.objects.filter(device=device)}
    assert names == {
        "offline": "north bench 2 offline",
        "battery_low": "north: replace the batteries",
        "signal_weak": "north bench 2 signal weak",
    }


@pytest.mark.django_db(transaction=True)
def test_a_device_going_silent_emails_a_channel_added_later(client, grower, smtp_inbox, eager):  # noqa: F811
    device, key = services.device_add(owner=grower, name="greenhouse-3 sensor")
    client.force_login(grower)
    added = client.post(
        "/app/channels",
        {"name": "night shift", "kind": "email", "target": "night@example.com",
         "device_health": "on"},
    )  # fmt: skip
    assert added.status_code == 302
    offline = Monitor.objects.get(device=device, health_kind=Kind.OFFLINE)
    monitor_services.monitor_update(monitor=offline, window=timedelta(seconds=2))

    send(key, "climate,zone=a soil_moisture=31")
    tick()
    time.sleep(2.5)
    tick()

    offline.refresh_from_db()
    assert offline.status == Status.FIRING
    night = Notification.objects.get(monitor=offline, channel__name="night shift", event="fired")
    assert night.status == Notification.DeliveryStatus.SENT
    to_night = [m for (_, tos), m in zip(smtp_inbox.envelopes, smtp_inbox.messages, strict=True)
                if "night@example.com" in tos]  # fmt: skip
    assert len(to_night) == 1
    assert "greenhouse-3 sensor offline" in to_night[0]["Subject"]
