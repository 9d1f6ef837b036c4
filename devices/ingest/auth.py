"""Which device sent a request: its ingest key's hash, looked up once per cache period.

The hot path never queries Postgres per request: a key's device (or its absence) is kept in
this process for ``INGEST_KEY_CACHE_SECONDS``. A rotated key, a deleted device or one that
changed account takes effect within that time in every web process (docs/devices.md).

A key whose entry expired is looked up again together with every other known key whose entry
would expire within the next half period (of the first ``_REFRESH_AT_ONCE`` entries): one
query refreshes them all, so their entries expire together afterwards. Many devices (or
gateways) sending every second cost each web process about one query per period instead of one
per key per period: at 100 gateways on 2 workers that was 20 ORM queries a second, each 0.75 to
1.1 ms of the worker's CPU, about a tenth of the web's CPU in bench_flip_arrival.py. Refreshing
early only makes an entry fresher: no entry is ever older than the period.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from devices.keys import hash_key
from devices.models import Device

MAX_KEY_LENGTH = 200
_MAX_CACHED = 100_000
_REFRESH_AT_ONCE = 1000  # entries looked at for refreshing along with an expired one


@dataclass(frozen=True, slots=True)
class Sender:
    device_id: int
    owner_id: int
    key_hash: str


# digest -> (expires at, sender or None); in order of expiry (an entry written again is moved
# to the end: every entry lives the same period).
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
    return _refresh(digest, now)


def _due_soon(now: float, period: float) -> list[str]:
    """Known keys whose entries expire within half a period, oldest first. At most
    ``_REFRESH_AT_ONCE`` entries are looked at (a miss costs bounded work, whatever the cache
    holds); expired unknown keys met on the way are dropped (a stream of made-up keys must not
    grow the query, nor keep known keys behind them from being refreshed together)."""
    soon = now + period / 2
    due: list[str] = []
    stale: list[str] = []
    for looked, (digest, (expires, sender)) in enumerate(_cache.items()):
        if expires > soon or looked >= _REFRESH_AT_ONCE:
            break
        if sender is not None:
            due.append(digest)
        elif expires <= now:
            stale.append(digest)
    for digest in stale:
        del _cache[digest]
    return due


def _refresh(digest: str, now: float) -> Sender | None:
    """Looks ``digest`` up, with the known keys due soon, in one query; caches them all."""
    period = settings.INGEST_KEY_CACHE_SECONDS
    digests = {digest, *_due_soon(now, period)}
    rows = Device.objects.filter(ingest_key_hash__in=digests, owner__isnull=False).values_list(
        "ingest_key_hash", "pk", "owner_id"
    )
    found = {row[0]: Sender(device_id=row[1], owner_id=row[2], key_hash=row[0]) for row in rows}
    if len(_cache) + len(digests) > _MAX_CACHED:  # bounded: unknown keys cannot grow it
        _cache.clear()
    expires = now + period
    for one in digests:
        _cache.pop(one, None)  # written again at the end: the dict stays in order of expiry
        _cache[one] = (expires, found.get(one))
    return found.get(digest)
