"""One ingest request, whatever carried it: the WSGI fast path, the Django view, the demo.

All or nothing per request: a batch with any refused point writes nothing and the answer lists
every refused point by index (the first ``MAX_ERRORS_LISTED``); a batch answered 202 is in
Redis and reaches InfluxDB within about a second.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings

from devices.ingest import auth, canonical, heartbeat, parse, queue, stamps
from devices.ingest.points import FIRMWARE, STATUS_FIELDS, Point, derive, to_line
from devices.ingest.signature import SignatureError, verify

logger = logging.getLogger(__name__)

JSON_TYPES = ("application/json",)
LINE_TYPES = ("text/plain", "application/x-influx-line-protocol")
_STATUS_NAMES = (*STATUS_FIELDS, FIRMWARE)
_STATUS_BYTES = tuple(name.encode() for name in _STATUS_NAMES)
_LIMITED = {
    queue.DEVICE_REQUESTS: ("device_rate_limited", "too many requests from this device"),
    queue.DEVICE_POINTS: ("device_rate_limited", "too many points from this device"),
    queue.ACCOUNT_POINTS: ("account_rate_limited", "too many points for this account"),
}


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, detail: str, **extra: Any) -> Answer:
    return Answer(status, {"detail": detail, "code": code, **extra})


def retry_later(status: int, code: str, detail: str, *, after_ms: int = 1000) -> Answer:
    """A refusal to try again (503 unavailable or behind, 429 over a limit), with
    ``Retry-After`` in whole seconds, at least one."""
    answer = error(status, code, detail)
    answer.headers["Retry-After"] = str(max(1, math.ceil(after_ms / 1000)))
    return answer


def too_large(limit: int | None = None) -> Answer:
    limit = settings.INGEST_MAX_BODY_BYTES if limit is None else limit
    return error(413, "too_large", f"the body is larger than {limit} bytes")


def ingest(
    body: bytes,
    *,
    header: Callable[[str], str],
    precision: str = "ns",
) -> Answer:
    """``header(name)`` gives a request header ('' when absent), e.g. ``X-API-Key``."""
    if len(body) > settings.INGEST_MAX_BODY_BYTES:
        return too_large()
    sender = auth.sender_for(header("X-API-Key"))
    if sender is None:
        return error(401, "bad_key", "missing or unknown X-API-Key (the device's ingest key)")
    # Nanoseconds from the clock itself (a float of seconds keeps only ~0.24 µs), and a block
    # of arrival times no other request gets: two readings of one device stamped alike would
    # be one point in InfluxDB (stamps.py). Rows are at most one per line or one per object.
    rows = max(body.count(b"\n") + 1, body.count(b"{"))
    now_ns = stamps.block(min(rows, settings.INGEST_MAX_POINTS))
    now = now_ns / 1e9
    replay_key = None
    signature = header("X-Signature")
    if signature:
        try:
            replay_key = verify(
                body,
                signature=signature,
                timestamp=header("X-Timestamp"),
                key_hash=sender.key_hash,
                now=now,
            )
        except SignatureError as exc:
            return error(403, exc.code, str(exc))
    content_type = header("Content-Type").split(";", 1)[0].strip().lower()
    is_json = content_type in JSON_TYPES or (not content_type and body[:1] in (b"{", b"["))
    if not is_json and content_type and content_type not in LINE_TYPES:
        return error(415, "unsupported_type", "send application/json or text/plain (line protocol)")
    prepared = _prepare(body, is_json=is_json, precision=precision, now_ns=now_ns, sender=sender)
    if isinstance(prepared, Answer):
        return prepared
    lines, status = prepared
    points = len(lines)
    lines.append(heartbeat.line(device_id=sender.device_id, status=status, time_ns=now_ns))
    try:
        outcome = queue.enqueue(
            device_id=sender.device_id,
            owner_id=sender.owner_id,
            lines="\n".join(lines),
            points=points,
            status=status,
            replay_key=replay_key,
        )
    except redis.RedisError:
        logger.exception("ingest: Redis unavailable")
        return retry_later(503, "unavailable", "ingest is unavailable; retry shortly")
    if outcome.reason == queue.REPLAYED:
        return error(403, "replayed", "this signature was already used; sign each request anew")
    if outcome.reason == queue.BACKLOG:
        return retry_later(503, "backlog", "ingest is behind; retry shortly")
    if outcome.reason != queue.OK:
        code, detail = _LIMITED[outcome.reason]
        return retry_later(429, code, detail, after_ms=outcome.retry_after_ms)
    return Answer(202, {"accepted": points, "rejected": 0})


def _prepare(
    body: bytes, *, is_json: bool, precision: str, now_ns: int, sender: auth.Sender
) -> tuple[list[str], dict[str, object]] | Answer:
    """The batch's lines for the stream and what it says about the device, or the 400 that
    refuses it. Canonical line protocol is read whole (``canonical``); anything else, or a
    body that fails there, point by point (``parse``), which words every refusal."""
    batch = None
    if not is_json and precision in parse.PRECISIONS:
        batch = canonical.read(
            body, device_id=sender.device_id, now_ns=now_ns, scale=parse.PRECISIONS[precision]
        )
    if batch is not None:
        return batch.lines, status_of(batch.reporting, newest_ns=batch.newest_ns, now_ns=now_ns)
    try:
        if is_json:
            parsed = parse.parse_json(body, now_ns=now_ns)
        else:
            parsed = parse.parse_lines(body, now_ns=now_ns, precision=precision)
    except parse.BatchError as exc:
        return error(400, exc.code, str(exc), accepted=0)
    if parsed.errors:
        listed = [{"index": i, "error": e} for i, e in parsed.errors[: parse.MAX_ERRORS_LISTED]]
        return error(
            400,
            "invalid_points",
            f"{len(parsed.errors)} of {parsed.count} points refused; nothing was written",
            accepted=0,
            rejected=len(parsed.errors),
            errors=listed,
        )
    derive(parsed.points)
    status = device_status(
        parsed.points,
        now_ns=now_ns,
        # a JSON \u escape can spell a name: then every point is read
        scan=b"\\u" in body or any(name in body for name in _STATUS_BYTES),
    )
    lines = [to_line(p, sender.device_id) for p in parsed.points]
    return lines, status


def device_status(points: list[Point], *, now_ns: int, scan: bool = True) -> dict[str, object]:
    """What the newest reading says about the device: its time (never later than now: a
    device's clock may run ahead), battery, RSSI, firmware. ``scan=False`` when the body does
    not mention any of them (most batches): only the time is read."""
    newest = max(point.time_ns for point in points)
    reporting = [p for p in points if p.mentions_any(_STATUS_NAMES)] if scan else []
    return status_of(reporting, newest_ns=newest, now_ns=now_ns)


def status_of(reporting: list[Point], *, newest_ns: int, now_ns: int) -> dict[str, object]:
    """``device_status`` from the batch's newest time and the points that may report status."""
    status: dict[str, object] = {"seen_ms": min(newest_ns, now_ns) // 1_000_000}
    for point in sorted(reporting, key=lambda p: p.time_ns):
        for name in STATUS_FIELDS:
            value = point.fields.get(name)
            if isinstance(value, float):
                status[name] = value
        firmware = point.fields.get(FIRMWARE) or point.tags.get(FIRMWARE)
        if isinstance(firmware, str):
            status[FIRMWARE] = firmware
    return status
