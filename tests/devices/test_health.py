"""Device health monitors through the real path: readings sent to the ingest service, written
to the account's hosted database by the flusher, evaluated by the dispatcher and the pipeline
(real Redis, InfluxDB and Postgres), with incidents and notifications as for any monitor."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from billing.gating import comp
from devices import health, services
from devices.ingest import heartbeat, queue
from devices.ingest.service import ingest
from devices.models import Device
from monitors import services as monitor_services
from monitors.evaluate import dispatch, pipeline
from monitors.models import Channel, Incident, Monitor, Notification, Schedule, Status
from tests.factories import ChannelFactory

Kind = Monitor.HealthKind


def send(key: str, body: str) -> None:
    """One batch of line protocol through the ingest service, then flushed to InfluxDB."""
    headers = {"X-API-Key": key, "Content-Type": "text/plain"}
    answer = ingest(body.encode(), header=lambda name: headers.get(name, ""))
    assert answer.status == 202, answer.body
    flusher = queue.Flusher(consumer="test")
    try:
        assert flusher.flush_once() >= 1
    finally:
        flusher.close()


def tick() -> None:
    """Every monitor due now, evaluated once in this process."""
    Schedule.objects.update(next_due_at=timezone.now())
    for batch in dispatch.claim_batches(now=timezone.now(), size=500):
        pipeline.evaluate_batch([(c.monitor_id, c.due_at) for c in batch])


def health_monitor(device: Device, kind: str) -> Monitor:
    return Monitor.objects.get(device=device, health_kind=kind)


@pytest.fixture
def grower(django_user_model):
    user = django_user_model.objects.create_user("grower", "grower@example.com", "pw-long-enough")
    comp(user)
    return user


@pytest.mark.django_db
def test_registration_makes_exactly_three_health_monitors_once(grower):
    device, _ = services.device_add(owner=grower, name="greenhouse-3 sensor")

    monitors = Monitor.objects.filter(device=device).order_by("health_kind")
    assert [m.health_kind for m in monitors] == ["battery_low", "offline", "signal_weak"]
    assert {m.name for m in monitors} == {
        "greenhouse-3 sensor offline",
        "greenhouse-3 sensor battery low",
        "greenhouse-3 sensor signal weak",
    }
    for monitor in monitors:
        assert monitor.source.hosted
        assert monitor.owner == grower
        assert monitor.tags == {"device_id": str(device.pk)}
        assert monitor.measurement == heartbeat.MEASUREMENT
        assert monitor.enabled
    offline = health_monitor(device, Kind.OFFLINE)
    assert (offline.field, offline.aggregation, offline.window) == (
        "seen",
        "count",
        timedelta(minutes=10),
    )
    assert offline.no_data_policy == "alerting"
    battery = health_monitor(device, Kind.BATTERY_LOW)
    assert (battery.comparator, battery.critical, battery.recovery) == ("below", 20.0, 25.0)
    signal = health_monitor(device, Kind.SIGNAL_WEAK)
    assert (signal.aggregation, signal.critical) == ("median", -85.0)

    services.device_registered(device=device)  # registered again (claimed by its own key)
    assert health.ensure_health_monitors(device=device) == []
    assert health.ensure_all() == 0
    assert Monitor.objects.filter(device=device).count() == 3


@pytest.mark.django_db
def test_a_paid_order_gives_every_device_its_own_health_monitors(grower):
    from billing.models import Customer, DeviceOrder

    customer, _ = Customer.objects.get_or_create(user=grower)
    order = DeviceOrder.objects.create(
        customer=customer, quantity=2, amount=9800, currency="eur", price_id="p",
        idempotency_key="k", status="paid",
    )  # fmt: skip
    made = services.devices_for_paid_order(owner_id=grower.pk, order=order, quantity=2)
    for device in made:
        assert Monitor.objects.filter(device=device).count() == 3


@pytest.mark.django_db
def test_they_notify_the_owners_channels_with_device_health_alerts(grower):
    slack = ChannelFactory(owner=grower, name="ops hook")
    paused = ChannelFactory(owner=grower, name="old hook", enabled=False)  # sends once enabled
    ChannelFactory(owner=grower, name="billing", device_health=False)
    ChannelFactory(name="someone else's")

    device, _ = services.device_add(owner=grower, name="nursery")

    for monitor in Monitor.objects.filter(device=device):
        assert set(monitor.channels.all()) == {slack, paused}


@pytest.mark.django_db
def test_an_account_without_channels_gets_one_to_its_own_email(grower):
    device, _ = services.device_add(owner=grower, name="nursery")

    channel = Channel.objects.get(owner=grower)
    assert (channel.kind, channel.config) == ("email", {"addresses": ["grower@example.com"]})
    for monitor in Monitor.objects.filter(device=device):
        assert list(monitor.channels.all()) == [channel]
    services.device_add(owner=grower, name="bench")  # the second device reuses it
    assert Channel.objects.filter(owner=grower).count() == 1


@pytest.mark.django_db
def test_they_are_changed_or_paused_not_deleted_and_go_with_their_device(grower):
    device, _ = services.device_add(owner=grower, name="bench")
    battery = health_monitor(device, Kind.BATTERY_LOW)
    client = APIClient()
    client.force_authenticate(grower)

    shown = client.get(f"/monitors/{battery.pk}").json()
    assert (shown["device"], shown["health_kind"]) == (device.pk, "battery_low")
    changed = client.patch(
        f"/monitors/{battery.pk}", {"critical": 10, "recovery": 15}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    paused = client.patch(f"/monitors/{battery.pk}", {"enabled": False}, format="json")
    assert paused.json()["status"] == "paused"
    refused = client.delete(f"/monitors/{battery.pk}")
    assert refused.status_code == 400
    assert "pause it" in str(refused.json())
    with pytest.raises(ValidationError):
        monitor_services.monitor_delete(monitor=battery)
    assert (
        client.patch(f"/monitors/{battery.pk}", {"device": 999}, format="json").json()["device"]
        == device.pk
    )  # read-only

    device.delete()
    assert not Monitor.objects.filter(name__startswith="bench").exists()


@pytest.mark.django_db(transaction=True)
def test_a_device_going_silent_fires_offline_and_coming_back_resolves_it(grower):
    device, key = services.device_add(owner=grower, name="greenhouse-3 sensor")
    ChannelFactory(owner=grower)  # besides the account email channel: it is not attached
    offline = health_monitor(device, Kind.OFFLINE)
    # a short window instead of 10 minutes, so the test waits seconds, not minutes
    monitor_services.monitor_update(monitor=offline, window=timedelta(seconds=2))

    send(key, "climate,zone=a soil_moisture=31")  # any field at all counts as a heartbeat
    tick()
    offline.refresh_from_db()
    assert offline.status == Status.OK
    assert offline.last_value == 1.0

    time.sleep(2.5)  # silence for longer than the window
    tick()
    offline.refresh_from_db()
    assert offline.status == Status.FIRING
    assert offline.status_reason == "no data in the last 2 s"
    incident = Incident.objects.get(monitor=offline)
    [fired] = Notification.objects.filter(monitor=offline, event="fired")
    assert fired.channel.name == health.ACCOUNT_EMAIL
    assert fired.payload["reason"] == "no data in the last 2 s"
    assert fired.payload["monitor"]["name"] == "greenhouse-3 sensor offline"
    # battery and signal say "No data" and tell nobody: offline is the one that tells
    for kind in (Kind.BATTERY_LOW, Kind.SIGNAL_WEAK):
        assert health_monitor(device, kind).status == Status.NO_DATA
    assert Notification.objects.filter(monitor__device=device).count() == 1

    send(key, "gro01 temperature=22.5,humidity=60")
    tick()
    offline.refresh_from_db()
    assert offline.status == Status.OK
    incident.refresh_from_db()
    assert incident.resolved_at is not None
    assert Notification.objects.filter(monitor=offline, event="resolved").count() == 1


@pytest.mark.django_db(transaction=True)
def test_battery_low_fires_and_recovers_past_its_recovery_level(grower):
    device, key = services.device_add(owner=grower, name="bench")
    battery = health_monitor(device, Kind.BATTERY_LOW)

    send(key, "gro01 temperature=21,battery=35")
    tick()
    battery.refresh_from_db()
    assert (battery.status, battery.last_value) == (Status.OK, 35.0)

    send(key, "gro01 temperature=21,battery=12")
    tick()
    battery.refresh_from_db()
    assert battery.status == Status.FIRING
    assert "12" in battery.status_reason
    assert Notification.objects.filter(monitor=battery, event="fired").count() == 1

    send(key, "gro01 temperature=21,battery=22")  # charging, not yet past 25 %
    tick()
    battery.refresh_from_db()
    assert battery.status == Status.FIRING
    send(key, "gro01 temperature=21,battery=90")
    tick()
    battery.refresh_from_db()
    assert battery.status == Status.OK


@pytest.mark.django_db(transaction=True)
def test_one_weak_reading_does_not_fire_signal_weak_but_a_weak_stretch_does(grower):
    device, key = services.device_add(owner=grower, name="bench")
    signal = health_monitor(device, Kind.SIGNAL_WEAK)

    for rssi in (-70, -72, -97):  # one batch each: each heartbeat carries its batch's RSSI
        send(key, f"gro01 temperature=21,rssi={rssi}")
    tick()
    signal.refresh_from_db()
    assert (signal.status, signal.last_value) == (Status.OK, -72.0)  # the median

    for rssi in (-95, -99):
        send(key, f"gro01 temperature=21,rssi={rssi}")
    tick()
    signal.refresh_from_db()
    assert (signal.status, signal.last_value) == (Status.FIRING, -95.0)


@pytest.mark.django_db(transaction=True)
def test_readings_are_stored_with_vpd_and_dew_point(grower):
    device, key = services.device_add(owner=grower, name="bench")
    send(key, "gro01,zone=a temperature=25,humidity=60")

    source = health_monitor(device, Kind.OFFLINE).source
    from devices import hosted

    with hosted.client() as conn:
        (result,) = conn.query(
            'SELECT "vpd", "dew_point", "device_id" FROM "gro01"', database=source.database
        )
    [row] = result.series[0].values
    assert row[1] == pytest.approx(1.2671, abs=1e-4)
    assert row[2] == pytest.approx(16.696, abs=1e-3)
    assert row[3] == str(device.pk)


@pytest.mark.django_db
def test_a_device_lists_its_health_monitors_in_a_fixed_order(grower):
    device, _ = services.device_add(owner=grower, name="bench")
    kinds = [m.health_kind for m in health.health_monitors(device=device)]
    assert kinds == ["offline", "battery_low", "signal_weak"]
