"""Writes a customer's InfluxDB pushes to growalert (``POST /influx/write``): its monitors are
decided on arrival, as device readings are (docs/arrival.md, "Pushed from your InfluxDB").

InfluxDB 1.x copies every write of a retention policy to its subscriptions. A source whose push
key is set (``monitors.services.source_push_enable``) is subscribed with::

    CREATE SUBSCRIPTION "growalert" ON "db"."autogen" DESTINATIONS ALL 'https://growalert:KEY@host/influx'

and InfluxDB then POSTs the line protocol it accepted to ``/influx/write?db=db&rp=autogen``,
with the key as the Basic auth password. Telegraf's InfluxDB output (or anything speaking the
1.x write API) can send to the same URL.

The points are not stored again (they are in the customer's InfluxDB): only the lines of
measurements the source's monitors watch go to the ingest stream, under
``queue.pushed_stream_key``, for the arrival evaluators; the flusher acknowledges them without
writing. Times are kept as sent (nanoseconds in the stream), bounded as the ingest bounds a
device's; a line stamped further ahead or further back, or with a value that is not a finite
number, is left out. The stream's limits hold per source and per account
(``queue.enqueue_pushed``): a customer pushing more than their share is answered 429 and delays
nobody else.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from devices.ingest import queue
from devices.ingest.auth import KeyCache
from devices.ingest.parse import PRECISIONS, split_unescaped, unescape
from devices.ingest.service import Answer, error, retry_later, too_large
from monitors.evaluate import arrival
from monitors.models import Monitor, Source

PATH = "/influx/write"
_NOT_FINITE = ("nan", "inf")


@dataclass(frozen=True, slots=True)
class Pusher:
    source_id: int
    owner_id: int
    database: str
    measurements: frozenset[str]  # what its enabled monitors watch; other lines are dropped


def _pushers(digests: set[str]) -> dict[str, Pusher]:
    rows = list(
        Source.objects.filter(push_key_hash__in=digests).values_list(
            "push_key_hash", "pk", "owner_id", "database"
        )
    )
    watched: dict[int, set[str]] = {}
    for source_id, measurement in (
        Monitor.objects.filter(source_id__in=[row[1] for row in rows], enabled=True)
        .exclude(measurement="")
        .values_list("source_id", "measurement")
        .distinct()
    ):
        watched.setdefault(source_id, set()).add(measurement)
    return {
        digest: Pusher(pk, owner_id, database, frozenset(watched.get(pk, ())))
        for digest, pk, owner_id, database in rows
    }


_by_key = KeyCache(_pushers)


def reset() -> None:
    _by_key.entries.clear()


def pusher_for(key: str) -> Pusher | None:
    """The source whose push key is ``key`` (cached for ``INGEST_KEY_CACHE_SECONDS``: a new
    key, or a monitor of a measurement new to the source, takes effect within that time)."""
    return _by_key.get(key)


def key_of(authorization: str, query_password: str = "") -> str:
    """The push key: the Basic auth password (InfluxDB sends the destination URL's user
    information so), else the 1.x API's ``p`` query parameter or a ``Token`` header."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    if scheme.lower() in ("token", "bearer"):
        return value.strip()
    return query_password


def _measurement(line: str) -> str:
    if "\\" not in line:
        return line.split(",", 1)[0].split(" ", 1)[0]
    try:
        head = split_unescaped(line, " ", quotes=True)[0]
        return unescape(split_unescaped(head, ",")[0])
    except ValueError:
        return ""


def _finite(head: str) -> bool:
    """False for a line (without its time) with a field InfluxDB would never have accepted:
    NaN or infinity, which no window can hold. Nearly every line is not parsed."""
    lowered = head.lower()
    if not any(word in lowered for word in _NOT_FINITE):
        return True
    try:
        items = split_unescaped(split_unescaped(head, " ", quotes=True)[1], ",", quotes=True)
    except (ValueError, IndexError):
        return True  # not a point: the evaluator reads no number from it
    for item in items:
        value = item.rpartition("=")[2]
        try:
            if not value.startswith('"') and not math.isfinite(float(value.rstrip("iu"))):
                return False
        except ValueError:
            continue  # a string or a boolean
    return True


def wanted_lines(
    text: str, measurements: frozenset[str], *, scale: int, now_ns: int
) -> tuple[list[str], int]:
    """The lines worth evaluating, each stamped in nanoseconds, and how many lines were left
    out for their time or value (lines of measurements nobody watches are not counted)."""
    low = now_ns - settings.INGEST_MAX_PAST_SECONDS * 1_000_000_000
    high = now_ns + settings.INGEST_MAX_FUTURE_SECONDS * 1_000_000_000
    kept: list[str] = []
    left_out = 0
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#") or _measurement(line) not in measurements:
            continue
        head, _, stamp = line.rpartition(" ")
        stamped = bool(head) and stamp.lstrip("-").isdigit()
        if stamped:
            time_ns = int(stamp) * scale
        else:
            head, time_ns = line, now_ns  # no time: written now, as InfluxDB does
        if not low <= time_ns <= high or not _finite(head):
            left_out += 1
            continue
        kept.append(line if stamped and scale == 1 else f"{head} {time_ns}")
    return kept, left_out


def accept(
    body: bytes, *, authorization: str, database: str, precision: str = "ns", password: str = ""
) -> Answer:
    """One write pushed by a customer's InfluxDB; 204 when taken (as InfluxDB answers)."""
    if len(body) > settings.PUSH_MAX_BODY_BYTES:
        return too_large(settings.PUSH_MAX_BODY_BYTES)
    pusher = pusher_for(key_of(authorization, password))
    if pusher is None:
        answer = error(401, "bad_key", "missing or unknown push key (the Basic auth password)")
        answer.headers["WWW-Authenticate"] = 'Basic realm="growalert"'
        return answer
    if database != pusher.database:
        return error(
            400,
            "wrong_database",
            f"this key pushes the source's database {pusher.database!r}, not {database!r}",
        )
    scale = PRECISIONS.get(precision or "ns")
    if scale is None:
        return error(400, "bad_precision", f"precision must be one of {', '.join(PRECISIONS)}")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return error(400, "not_utf8", "the body is not UTF-8 line protocol")
    if not settings.ARRIVAL_EVALUATION or not pusher.measurements:
        return Answer(204, {})
    kept, left_out = wanted_lines(text, pusher.measurements, scale=scale, now_ns=time.time_ns())
    try:
        if kept:
            refusal = _enqueue(pusher, kept)
            if refusal is not None:
                return refusal
        arrival.mark_pushing(pusher.source_id)
    except redis.RedisError:
        return retry_later(503, "unavailable", "growalert is unavailable; retry shortly")
    return Answer(204, {}) if not left_out else _left_out(left_out)


def _enqueue(pusher: Pusher, kept: list[str]) -> Answer | None:
    """None when the lines are in the stream; else the refusal. Raises redis.RedisError."""
    outcome = queue.enqueue_pushed(
        source_id=pusher.source_id,
        owner_id=pusher.owner_id,
        stream_db=queue.pushed_stream_key(pusher.source_id),
        lines="\n".join(kept),
        points=len(kept),
    )
    if outcome.reason == queue.OK:
        return None
    if outcome.reason == queue.BACKLOG:
        return retry_later(503, "backlog", "growalert is behind; retry shortly")
    return retry_later(
        429,
        "rate_limited",
        "too many points for this source or account",
        after_ms=outcome.retry_after_ms,
    )


def _left_out(count: int) -> Answer:
    """What InfluxDB answers a write it took in part; the rest was taken."""
    return error(
        400,
        "partial_write",
        f"partial write: {count} point(s) left out (time outside the accepted range, or a value "
        "that is not a finite number); the others were taken",
        dropped=count,
    )
