"""Writes: devices made for a paid order, added or claimed by an account, renamed, re-keyed,
and the status the devices report (battery, signal, firmware, last seen).

``device_registered`` is the one place that runs when a device starts reporting to an account
(paid, added, claimed): the account's hosted database and Source are made ready there, and
whatever else every registered device needs (health monitors) belongs there too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import DeviceOrder
from devices import health, hosted, keys
from devices.models import (
    BATTERY_MAX,
    BATTERY_MIN,
    MAX_FIRMWARE,
    MAX_NAME,
    MAX_PLACE,
    RSSI_MAX,
    RSSI_MIN,
    Device,
)

logger = logging.getLogger(__name__)

DEVICE_NAME = "GRO-01 #{number}"
NOT_FOUND = "No device matches this ingest key or claim code."
_CLAIM_ATTEMPTS = 5


def _text(value: str, *, field: str, limit: int, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise ValidationError({field: ["This field is required."]})
    if len(value) > limit:
        raise ValidationError({field: [f"at most {limit} characters"]})
    if "\x00" in value or any(ord(c) < 32 for c in value):
        raise ValidationError({field: ["control characters are not allowed"]})
    return value


def _create(**fields: object) -> tuple[Device, str]:
    """A device with a fresh ingest key and claim code; returns it and the plain key."""
    for attempt in range(_CLAIM_ATTEMPTS):
        key, prefix, digest = keys.new_ingest_key()
        try:
            with transaction.atomic():
                device = Device.objects.create(
                    ingest_key_prefix=prefix,
                    ingest_key_hash=digest,
                    claim_code=keys.new_claim_code(),
                    **fields,
                )
            return device, key
        except IntegrityError:  # a claim code drawn twice (about 1 in 10^17)
            if attempt == _CLAIM_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def device_registered(*, device: Device) -> None:
    """Runs whenever ``device`` starts reporting to an account (``device.owner_id`` set):
    the hosted Source now, the hosted database after the commit (best effort: the ingest
    flusher creates it too). Extend here for what every registered device needs."""
    if device.owner_id is None:
        return
    owner_id = int(device.owner_id)
    hosted.hosted_source(owner_id=owner_id)
    health.ensure_health_monitors(device=device)
    transaction.on_commit(lambda: hosted.ensure_database_quietly(owner_id))


def devices_for_paid_order(*, owner_id: int, order: DeviceOrder, quantity: int) -> list[Device]:
    """The devices of a paid order (called once, inside the order's transaction)."""
    number = Device.objects.filter(owner_id=owner_id).count()
    now = timezone.now()
    made = []
    for offset in range(1, quantity + 1):
        device, _ = _create(
            owner_id=owner_id,
            order=order,
            name=DEVICE_NAME.format(number=number + offset),
            registered_at=now,
        )
        made.append(device)
    for device in made:
        device_registered(device=device)
    return made


def device_add(
    *, owner: AbstractBaseUser, name: str, greenhouse: str = "", zone: str = ""
) -> tuple[Device, str]:
    """A device added from the account page (a DIY sensor, a simulator): returns the device
    and its ingest key, shown this once."""
    device, key = _create(
        owner_id=owner.pk,
        name=_text(name, field="name", limit=MAX_NAME, required=True),
        greenhouse=_text(greenhouse, field="greenhouse", limit=MAX_PLACE),
        zone=_text(zone, field="zone", limit=MAX_PLACE),
        registered_at=timezone.now(),
    )
    device_registered(device=device)
    return device, key


def device_register(
    *,
    owner: AbstractBaseUser,
    code: str,
    name: str = "",
    greenhouse: str = "",
    zone: str = "",
) -> Device:
    """Registers a device to ``owner`` by its ingest key (``gro_...``) or its claim code: the
    account's own (paid) device, or an unclaimed one. Another account's device reads the
    same as an unknown code."""
    code = (code or "").strip()
    if not code or len(code) > 200:
        raise ValidationError({"code": [NOT_FOUND]})
    if code.startswith(keys.INGEST_KEY_PREFIX):
        match = Q(ingest_key_hash=keys.hash_key(code))
    else:
        match = Q(claim_code=keys.normalize_claim_code(code))
    name = _text(name, field="name", limit=MAX_NAME)
    greenhouse = _text(greenhouse, field="greenhouse", limit=MAX_PLACE)
    zone = _text(zone, field="zone", limit=MAX_PLACE)
    with transaction.atomic():
        device = Device.objects.select_for_update().filter(match).first()
        if device is None or device.owner_id not in (None, owner.pk):
            raise ValidationError({"code": [NOT_FOUND]})
        old_name = device.name
        device.owner_id = owner.pk
        device.registered_at = device.registered_at or timezone.now()
        device.name = name or device.name or "GRO-01"
        device.greenhouse = greenhouse or device.greenhouse
        device.zone = zone or device.zone
        device.save()
        if device.name != old_name:
            health.rename_health_monitors(device=device, old_name=old_name)
        device_registered(device=device)
    return device


@transaction.atomic
def device_update(*, device: Device, name: str, greenhouse: str = "", zone: str = "") -> Device:
    """Renames and places the device; its health monitors take the new name."""
    old_name = device.name
    device.name = _text(name, field="name", limit=MAX_NAME, required=True)
    device.greenhouse = _text(greenhouse, field="greenhouse", limit=MAX_PLACE)
    device.zone = _text(zone, field="zone", limit=MAX_PLACE)
    device.save(update_fields=["name", "greenhouse", "zone"])
    if device.name != old_name:
        health.rename_health_monitors(device=device, old_name=old_name)
    return device


def device_rotate_ingest_key(*, device: Device) -> str:
    """A new ingest key for the device; the plain key is returned once and never stored. The
    old key stops working within ``INGEST_KEY_CACHE_SECONDS`` (the ingest path's cache)."""
    key, prefix, digest = keys.new_ingest_key()
    device.ingest_key_prefix, device.ingest_key_hash = prefix, digest
    device.save(update_fields=["ingest_key_prefix", "ingest_key_hash"])
    return key


@dataclass
class Reported:
    """What a device's readings said about the device itself, newest values."""

    seen_at: datetime
    battery: float | None = None
    rssi: float | None = None
    firmware: str | None = None


def _bounded(value: float | None, low: int, high: int) -> int | None:
    if value is None:
        return None
    return int(min(max(round(value), low), high))


_REPORTED_SQL = """
    UPDATE devices_device AS d SET
        last_seen_at = GREATEST(d.last_seen_at, r.seen_at),
        battery = COALESCE(r.battery, d.battery),
        rssi = COALESCE(r.rssi, d.rssi),
        firmware = COALESCE(r.firmware, d.firmware)
    FROM unnest(%s::bigint[], %s::timestamptz[], %s::smallint[], %s::smallint[], %s::text[])
        AS r(id, seen_at, battery, rssi, firmware)
    WHERE d.id = r.id
"""


def devices_reported(reports: Mapping[int, Reported]) -> None:
    """Applies what devices reported, every device in one statement: last_seen_at only moves
    forward (Postgres' GREATEST skips NULL: the first reading sets it), a value not reported
    keeps the row's. Values out of range are clamped (a hostile device cannot break the row's
    constraints)."""
    if not reports:
        return
    ids, seen, batteries, rssis, firmwares = [], [], [], [], []
    for device_id, report in reports.items():
        ids.append(device_id)
        seen.append(report.seen_at)
        batteries.append(_bounded(report.battery, BATTERY_MIN, BATTERY_MAX))
        rssis.append(_bounded(report.rssi, RSSI_MIN, RSSI_MAX))
        firmwares.append(None if report.firmware is None else report.firmware[:MAX_FIRMWARE])
    with connection.cursor() as cursor:
        cursor.execute(_REPORTED_SQL, [ids, seen, batteries, rssis, firmwares])
