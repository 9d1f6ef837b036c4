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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from django.conf import settings

from devices.keys import hash_key
from devices.models import Device

MAX_KEY_LENGTH = 200
_MAX_CACHED = 100_000
_REFRESH_AT_ONCE = 1000  # entries looked at for refreshing along with an expired one

Found = TypeVar("Found")


class KeyCache(Generic[Found]):
    """What a key's digest stands for, looked up by ``lookup(digests)`` (one query for many)
    and kept for ``INGEST_KEY_CACHE_SECONDS``; unknown digests are remembered as None."""

    def __init__(self, lookup: Callable[[set[str]], dict[str, Found]]) -> None:
        self.lookup = lookup
        # digest -> (expires at, what it stands for or None); in order of expiry (an entry
        # written again is moved to the end: every entry lives the same period).
        self.entries: dict[str, tuple[float, Found | None]] = {}

    def get(self, key: str) -> Found | None:
        if not key or len(key) > MAX_KEY_LENGTH:
            return None
        digest = hash_key(key)
        now = time.monotonic()
        hit = self.entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        return self._refresh(digest, now)

    def _due_soon(self, now: float, period: float) -> list[str]:
        """Known keys whose entries expire within half a period, oldest first. At most
        ``_REFRESH_AT_ONCE`` entries are looked at (a miss costs bounded work, whatever the
        cache holds); expired unknown keys met on the way are dropped (a stream of made-up keys
        must not grow the query, nor keep known keys behind them from being refreshed
        together)."""
        soon = now + period / 2
        due: list[str] = []
        stale: list[str] = []
        for looked, (digest, (expires, found)) in enumerate(self.entries.items()):
            if expires > soon or looked >= _REFRESH_AT_ONCE:
                break
            if found is not None:
                due.append(digest)
            elif expires <= now:
                stale.append(digest)
        for digest in stale:
            del self.entries[digest]
        return due

    def _refresh(self, digest: str, now: float) -> Found | None:
        """Looks ``digest`` up, with the known keys due soon, in one query; caches them all."""
        period = settings.INGEST_KEY_CACHE_SECONDS
        digests = {digest, *self._due_soon(now, period)}
        found = self.lookup(digests)
        if len(self.entries) + len(digests) > _MAX_CACHED:  # bounded: unknown keys cannot grow it
            self.entries.clear()
        expires = now + period
        for one in digests:
            self.entries.pop(one, None)  # written again at the end: in order of expiry
            self.entries[one] = (expires, found.get(one))
        return found.get(digest)


@dataclass(frozen=True, slots=True)
class Sender:
    device_id: int
    owner_id: int
    key_hash: str


def _senders(digests: set[str]) -> dict[str, Sender]:
    rows = Device.objects.filter(ingest_key_hash__in=digests, owner__isnull=False).values_list(
        "ingest_key_hash", "pk", "owner_id"
    )
    return {row[0]: Sender(device_id=row[1], owner_id=row[2], key_hash=row[0]) for row in rows}


_by_key = KeyCache(_senders)
_cache = _by_key.entries


def reset() -> None:
    _cache.clear()


def sender_for(key: str) -> Sender | None:
    """The owned device whose ingest key is ``key``; None for an unknown or unowned one."""
    return _by_key.get(key)
