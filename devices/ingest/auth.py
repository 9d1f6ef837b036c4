"""Which device sent a request: its ingest key's hash, looked up once per cache period.

The hot path never queries Postgres per request: a key's device (or its absence) is kept in
this process for ``INGEST_KEY_CACHE_SECONDS``. A rotated key, a deleted device or one that
changed account takes effect within that time in every web process (docs/devices.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from devices.keys import hash_key
from devices.models import Device

MAX_KEY_LENGTH = 200
_MAX_CACHED = 100_000


@dataclass(frozen=True, slots=True)
class Sender:
    device_id: int
    owner_id: int
    key_hash: str


_cache: dict[str, tuple[float, Sender | None]] = {}


def reset() -> None:
    _cache.clear()


def sender_for(key: str) -> Sender | None:
    """The owned device whose ingest key is ``key``; None for an unknown or unowned one."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    digest = hash_key(key)
    now = time.monotonic()
    hit = _cache.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    row = (
        Device.objects.filter(ingest_key_hash=digest, owner__isnull=False)
        .values_list("pk", "owner_id")
        .first()
    )
    sender = Sender(device_id=row[0], owner_id=row[1], key_hash=digest) if row else None
    if len(_cache) >= _MAX_CACHED:  # bounded: unknown keys cannot grow it without end
        _cache.clear()
    _cache[digest] = (now + settings.INGEST_KEY_CACHE_SECONDS, sender)
    return sender
