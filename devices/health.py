"""Every registered device's health monitors: offline, battery low, signal weak.

They are ordinary monitors (the same state machine, incidents, channels and editor as any
other) on the account's hosted Source, reading the heartbeat growalert writes for every batch a
device sends (devices/ingest/heartbeat.py), marked with ``Monitor.device`` and
``Monitor.health_kind`` (one of each kind per device). They are made when the device is
registered (``devices.services.device_registered``) and for devices registered before this
existed (migration devices 0003); the owner changes their thresholds and durations or pauses
them like any monitor, and they are deleted with their device.

Defaults:

* **offline**: no heartbeat for 10 minutes (``count`` of ``seen`` over a 10 m window; no data
  counts as failing, so it fires whatever the device stopped sending, and resolves with the
  first batch after it).
* **battery low**: the last ``battery`` reported in the past hour below 20 %, resolved at 25 %
  (so a battery hovering at 20 % does not flap).
* **signal weak**: the median ``rssi`` over 30 minutes below -85 dBm, resolved at -80 dBm; a
  median, so one bad reading among several does not fire.

Battery and signal show "No data" when the device reports neither (a mains-powered DIY sensor)
or is offline, and notify nobody for it: the offline monitor is the one that tells.

Channels: each health monitor notifies the owner's channels that have "device health alerts"
on (``Channel.device_health``, on by default; a channel added later is attached to every
existing health monitor too, monitors/notify/channels.py); an account with no channel at all
gets an email channel to its own address (``ACCOUNT_EMAIL``), so a new grower hears of a dead
sensor without setting anything up. Renaming the device renames its health monitors.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from devices import hosted
from devices.models import Device
from devices.series import HEARTBEAT as MEASUREMENT
from devices.series import SEEN, SERVER_TAG
from monitors import services as monitor_services
from monitors.models import Channel, Monitor
from monitors.notify import channels as channel_services

logger = logging.getLogger(__name__)

Kind = Monitor.HealthKind
OFFLINE_AFTER = timedelta(minutes=10)
BATTERY_BELOW, BATTERY_RECOVERS_AT = 20.0, 25.0  # percent
RSSI_BELOW, RSSI_RECOVERS_AT = -85.0, -80.0  # dBm
CHECK_EVERY = timedelta(minutes=1)
ACCOUNT_EMAIL = "Account email"


def specs(device_id: int, device_name: str) -> dict[str, dict[str, Any]]:
    """Each health monitor's fields, by kind: pure data (the backfill migration uses it too)."""
    common: dict[str, Any] = {
        "measurement": MEASUREMENT,
        "tags": {SERVER_TAG: str(device_id)},
        "interval": CHECK_EVERY,
        "comparator": "below",
        "pending_for": 1,
        "recover_after": 1,
        "error_policy": "status",
        "flap_detection": True,
    }
    return {
        Kind.OFFLINE: {
            **common,
            "name": f"{device_name} offline",
            "description": "Fires when the device has sent nothing for the window.",
            "field": SEEN,
            "aggregation": "count",
            "window": OFFLINE_AFTER,
            "critical": 1.0,
            "no_data_policy": "alerting",
        },
        Kind.BATTERY_LOW: {
            **common,
            "name": f"{device_name} battery low",
            "description": "The battery level the device last reported (percent).",
            "field": "battery",
            "aggregation": "last",
            "window": timedelta(hours=1),
            "critical": BATTERY_BELOW,
            "recovery": BATTERY_RECOVERS_AT,
            "no_data_policy": "status",
        },
        Kind.SIGNAL_WEAK: {
            **common,
            "name": f"{device_name} signal weak",
            "description": "The median signal strength the device reported (RSSI, dBm).",
            "field": "rssi",
            "aggregation": "median",
            "window": timedelta(minutes=30),
            "critical": RSSI_BELOW,
            "recovery": RSSI_RECOVERS_AT,
            "no_data_policy": "status",
        },
    }


def owner_channels(owner: Any) -> list[Channel]:
    """The channels a new health monitor notifies: the owner's channels with device health
    alerts on; an account email channel when the owner has no channel at all."""
    channels = channel_services.device_health_channels(owner=owner)
    if channels or Channel.objects.filter(owner=owner).exists() or not owner.email:
        return channels
    channel = channel_services.channel_create(
        owner=owner,
        name=ACCOUNT_EMAIL,
        kind=Channel.Kind.EMAIL,
        config={"addresses": [owner.email]},
    )
    return [channel]


def rename_health_monitors(*, device: Device, old_name: str) -> None:
    """Follows a device's new name in its health monitors' names, except names the owner
    changed (a name that is no longer ``<old name> offline`` etc. is the owner's)."""
    old, new = specs(device.pk, old_name), specs(device.pk, device.name)
    for kind, fields in old.items():
        Monitor.objects.filter(device=device, health_kind=kind, name=fields["name"]).update(
            name=new[kind]["name"]
        )


@transaction.atomic
def ensure_health_monitors(*, device: Device) -> list[Monitor]:
    """Creates the device's missing health monitors (idempotent); returns the ones created.
    Health monitors left from a previous owner are deleted first."""
    if device.owner_id is None:
        return []
    Monitor.objects.filter(device=device).exclude(owner_id=device.owner_id).delete()
    have = set(Monitor.objects.filter(device=device).values_list("health_kind", flat=True))
    missing = {k: f for k, f in specs(device.pk, device.name).items() if k not in have}
    if not missing:
        return []
    owner = get_user_model()._default_manager.get(pk=device.owner_id)
    source = hosted.hosted_source(owner_id=owner.pk)
    channels = owner_channels(owner)
    made = []
    for kind, fields in missing.items():
        try:
            with transaction.atomic():
                made.append(
                    monitor_services.monitor_create(
                        owner=owner,
                        source=source,
                        channels=channels,
                        device=device,
                        health_kind=kind,
                        **fields,
                    )
                )
        except IntegrityError:  # made by a concurrent registration of the same device
            logger.info("health monitor %s of device %s already made", kind, device.pk)
    return made


def ensure_all() -> int:
    """Health monitors for every owned device that lacks one (idempotent); returns how many
    monitors were made. For ``manage.py device_health``."""
    made = 0
    for device in Device.objects.filter(owner__isnull=False).iterator():
        made += len(ensure_health_monitors(device=device))
    return made


def health_monitors(*, device: Device) -> list[Monitor]:
    """The device's health monitors in a fixed order (offline, battery, signal): for the device
    page and API."""
    order = list(Kind.values)
    found = Monitor.objects.filter(device=device).select_related("source")
    return sorted(found, key=lambda m: order.index(str(m.health_kind)))
