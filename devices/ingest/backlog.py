"""How far behind the ingest stream's readers are: what /metrics exports and
``manage.py check_deployment`` prints.

Every consumer group of the stream (the flushers writing to InfluxDB, and any other reader) has
an oldest entry it has not acknowledged yet: the oldest of its pending entries (read, not yet
acknowledged) and of the entries it has not read at all. Its age is how late device readings are
for that reader: a flusher that is down or an InfluxDB that does not keep up shows here long
before monitors on hosted data fall silent. A group that does not exist yet (the flusher never
started) is behind by the age of the stream's first entry; a reader's group the stream no
longer waits for (an arrival evaluator shard idle for ABANDONED_GROUP_MS: the poller decides
its monitors again, docs/arrival.md) is left out.

Each figure costs Redis O(1) commands (XINFO GROUPS, and per group one XPENDING summary and one
XRANGE of one entry), whatever the backlog.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from devices.ingest.queue import GROUP, STREAM, holds_stream


@dataclass(frozen=True)
class GroupLag:
    group: str
    oldest_age_seconds: float  # 0 when the group has acknowledged every entry
    pending: int  # read by a consumer, not acknowledged yet


@dataclass(frozen=True)
class Backlog:
    entries: int  # in the stream (waiting for at least one group)
    groups: tuple[GroupLag, ...]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _age_seconds(entry_id: str, now_ms: int) -> float:
    """An entry id is ``<ms since the epoch>-<seq>``: its age needs no read of the entry."""
    return max(0.0, (now_ms - int(entry_id.split("-", 1)[0])) / 1000)


def _first_after(client: redis.Redis, last_id: str) -> str | None:
    found: Any = client.xrange(STREAM, min=f"({last_id}", count=1)
    return _text(found[0][0]) if found else None


def _group_lag(client: redis.Redis, info: dict[str, Any], now_ms: int) -> GroupLag:
    name = _text(info["name"])
    summary: Any = client.xpending(STREAM, name)
    pending = int(summary["pending"])
    oldest = [_text(summary["min"])] if pending and summary.get("min") else []
    unread = _first_after(client, _text(info["last-delivered-id"]))
    if unread:
        oldest.append(unread)
    age = max((_age_seconds(i, now_ms) for i in oldest), default=0.0)
    return GroupLag(group=name, oldest_age_seconds=age, pending=pending)


def read(client: redis.Redis) -> Backlog:
    """Raises redis.RedisError when Redis cannot be read."""
    now_ms = int(time.time() * 1000)
    try:
        infos: Any = client.xinfo_groups(STREAM)
    except redis.ResponseError:  # no stream yet: nothing was ever accepted
        infos = []
    groups = [_group_lag(client, info, now_ms) for info in infos if holds_stream(client, info)]
    if GROUP not in {g.group for g in groups}:  # the flusher never started
        first: Any = client.xrange(STREAM, count=1)
        age = _age_seconds(_text(first[0][0]), now_ms) if first else 0.0
        groups.append(GroupLag(group=GROUP, oldest_age_seconds=age, pending=0))
    return Backlog(
        entries=int(client.xlen(STREAM)), groups=tuple(sorted(groups, key=lambda g: g.group))
    )
