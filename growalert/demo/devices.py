"""The demo's GRO-01 devices: registered to the demo account, sending through ``/ingest``.

``make run`` runs the web server and beat; every few seconds beat's ``simulate_demo_devices``
task posts each device's latest readings to ``DEMO_INGEST_URL`` over HTTP with the device's
ingest key, exactly as a device would, and the ingest flusher writes them to the account's
hosted database, which the demo monitors read. When no web server answers there (tests, a
worker without ``make run``), the same readings go through the same ingest service in-process.

A demo device's ingest key is derived from ``SECRET_KEY`` and the device (so the simulator can
send without the plain key being stored anywhere); only the demo's own devices have such keys.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import random
import time
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from devices import hosted, keys, services
from devices.ingest import service
from devices.models import Device
from growalert.demo import gro01
from monitors.influxdb import client as influx

logger = logging.getLogger(__name__)

GREENHOUSE = "Demo farm"
FIRMWARE = "1.4.2"
STEP_S = 5


@dataclass(frozen=True)
class DemoDevice:
    device_id: int
    tag: str  # the ``device`` tag the demo monitors select
    key: str


def demo_key(owner_id: int, tag: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"demo-device:{owner_id}:{tag}".encode(), hashlib.sha256
    )
    return keys.INGEST_KEY_PREFIX + "demo_" + digest.hexdigest()[:40]


def ensure_demo_devices(*, owner: AbstractBaseUser) -> list[DemoDevice]:
    """The demo's three GRO-01s, registered to ``owner`` once (rerunning changes nothing)."""
    out = []
    for tag in gro01.DEVICES:
        key = demo_key(int(owner.pk), tag)
        digest = keys.hash_key(key)
        with transaction.atomic():
            device = Device.objects.filter(ingest_key_hash=digest).first()
            if device is None:
                device = Device.objects.create(
                    owner_id=owner.pk,
                    name=f"GRO-01 {tag}",
                    greenhouse=GREENHOUSE,
                    zone=tag,
                    ingest_key_prefix=key[: keys.SHOWN_PREFIX_LENGTH],
                    ingest_key_hash=digest,
                    claim_code=keys.new_claim_code(),
                    registered_at=timezone.now(),
                )
                services.device_registered(device=device)
        out.append(DemoDevice(device.pk, tag, key))
    return out


def demo_devices() -> list[DemoDevice]:
    """The demo devices of every account that has them (the demo admin, normally)."""
    from django.contrib.auth import get_user_model

    owner = get_user_model()._default_manager.filter(username=settings.DEMO_USERNAME).first()
    if owner is None:
        return []
    return ensure_demo_devices(owner=owner)


def lines_for(tag: str, *, start_ms: int, end_ms: int, rng: random.Random) -> list[str]:
    """The device's readings (and its battery, signal and firmware) in [start, end]."""
    out = []
    first = start_ms - start_ms % (STEP_S * 1000)
    for ts in range(first, end_ms + 1, STEP_S * 1000):
        if ts < start_ms:
            continue
        fields: dict[str, float | int | bool | str] = dict(gro01.reading(tag, ts, rng))
        fields["battery"] = float(90 - gro01.DEVICES.index(tag) * 17 - (ts // 3_600_000) % 10)
        fields["rssi"] = float(round(-58 - 9 * gro01.DEVICES.index(tag) + 3 * math.sin(ts / 6e4)))
        fields["firmware"] = FIRMWARE
        out.append(influx.line(gro01.MEASUREMENT, fields, tags={"device": tag}, timestamp_ms=ts))
    return out


def send_live(*, now_ms: int | None = None, lookback_s: int = 10) -> int:
    """Posts each demo device's readings of the last ``lookback_s`` seconds; returns the
    number of points accepted."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    rng = random.Random()
    accepted = 0
    for device in demo_devices():
        body = "\n".join(
            lines_for(device.tag, start_ms=now_ms - lookback_s * 1000, end_ms=now_ms, rng=rng)
        ).encode()
        if body:
            accepted += _send(device, body)
    return accepted


def _send(device: DemoDevice, body: bytes) -> int:
    headers = {"X-API-Key": device.key, "Content-Type": "text/plain"}
    url = settings.DEMO_INGEST_URL
    if url:
        try:
            response = httpx.post(f"{url}?precision=ms", content=body, headers=headers, timeout=5)
        except httpx.TransportError:
            logger.info("demo: %s does not answer; ingesting in-process", url)
        else:
            if response.status_code != 202:
                logger.warning("demo: /ingest answered %s: %s", response.status_code, response.text)
                return 0
            return int(response.json()["accepted"])
    answer = service.ingest(body, header=lambda name: headers.get(name, ""), precision="ms")
    if answer.status != 202:
        logger.warning("demo: ingest refused the readings: %s", answer.body)
        return 0
    return int(answer.body["accepted"])


def load_history(*, owner: AbstractBaseUser, hours: float) -> int:
    """Writes ``hours`` of past readings straight to the account's hosted database (a
    backfill older than what /ingest accepts in one go); returns the number of points."""
    database = hosted.database_name(int(owner.pk))
    hosted.ensure_database(database)
    lines = list(gro01.history_lines(end_ms=int(time.time() * 1000), hours=hours))
    with hosted.client(timeout=30) as conn:
        for start in range(0, len(lines), 5000):
            conn.write(lines[start : start + 5000], database=database)
    return len(lines)
