"""From a request body to validated points, or the reasons it is refused.

A point without a timestamp gets the time it was received, plus its index in the batch in
nanoseconds: two such points of one series never overwrite each other in InfluxDB.

Two forms (docs/devices.md): the AlertStream JSON shape (``{"event_type", "data"}``, one event,
a list of them, or ``{"events": [...]}``) and InfluxDB line protocol. ``BatchError`` refuses the
whole body (it cannot be read); ``Parsed.errors`` lists the points refused, by index.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

from devices.ingest.points import (
    MAX_FIELDS,
    MAX_TAG_VALUE,
    MAX_TAGS,
    STRING_FIELDS,
    Point,
    PointError,
    check_counts,
    check_field_value,
    check_name,
    check_tag_value,
    check_time,
    max_past_seconds,
)
from devices.ingest.stamps import STEP
from devices.series import SERVER_TAG

MAX_ERRORS_LISTED = 50
EVENT_KEYS = frozenset({"event_type", "data", "tags", "timestamp"})
PRECISIONS = {"ns": 1, "us": 1_000, "u": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
# A line already in canonical form: plain names, tag values needing no escape, plain decimal
# numbers below 1e15 (finite by construction), an integer timestamp. Most devices send this;
# it is read with one regex match. Anything else (escapes, strings, booleans, integers with
# ``i``, exponents, a text field...) takes the general parser below, which words every refusal.
_N = r"[A-Za-z][A-Za-z0-9_.\-]{0,63}"
_V = r"-?(?:[0-9]{1,15}(?:\.[0-9]*)?|\.[0-9]+)"  # InfluxDB refuses "+1": rewritten as 1.0
_FAST = re.compile(
    rf"({_N})((?:,{_N}=[^\x00-\x20,=\\\"\x7f-\x9f]{{1,{MAX_TAG_VALUE}}})*)"
    rf" ({_N}={_V}(?:,{_N}={_V})*)(?: ([0-9]{{1,19}}))?"
)
_TEXT_FIELD = re.compile("|".join(f"{name}=" for name in sorted(STRING_FIELDS)))
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})


class BatchError(ValueError):
    """The body as a whole cannot be read; ``code`` names the reason."""

    def __init__(self, message: str, code: str = "malformed") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Parsed:
    points: list[Point] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    count: int = 0  # points in the body, valid or not

    def refuse(self, index: int, message: str) -> None:
        self.errors.append((index, message))


def _too_many(count: int) -> None:
    if count > settings.INGEST_MAX_POINTS:
        raise BatchError(
            f"at most {settings.INGEST_MAX_POINTS} points per request, got {count}",
            code="too_many_points",
        )


# ---------------------------------------------------------------- JSON


def _no_constants(name: str) -> Any:
    raise BatchError(f"{name} is not a number: NaN and infinity are not allowed", code="not_finite")


def parse_json(body: bytes, *, now_ns: int) -> Parsed:
    try:
        document = json.loads(body, parse_constant=_no_constants)
    except BatchError:
        raise
    except (ValueError, RecursionError) as exc:
        raise BatchError(f"the body is not valid JSON: {str(exc)[:120]}") from exc
    if isinstance(document, dict) and "events" in document:
        if set(document) != {"events"}:
            unknown = sorted(set(document) - {"events"})
            raise BatchError(f"unknown top-level fields: {', '.join(unknown)[:200]}")
        document = document["events"]
    events = document if isinstance(document, list) else [document]
    if not events:
        raise BatchError("no events in the body", code="empty")
    _too_many(len(events))
    parsed = Parsed(count=len(events))
    for index, event in enumerate(events):
        try:
            parsed.points.append(_event(event, now_ns + index * STEP))
        except PointError as exc:
            parsed.refuse(index, str(exc))
    return parsed


def _event(event: object, now_ns: int) -> Point:
    if not isinstance(event, dict):
        raise PointError('an event is an object: {"event_type": ..., "data": {...}}')
    unknown = set(event) - EVENT_KEYS
    if unknown:
        raise PointError(f"unknown fields: {', '.join(sorted(map(str, unknown)))[:200]}")
    measurement = check_name(event.get("event_type"), "event_type")
    data, tags = event.get("data"), event.get("tags", {})
    if not isinstance(data, dict):
        raise PointError('"data" is an object of field names to values')
    if not isinstance(tags, dict):
        raise PointError('"tags" is an object of tag names to string values')
    check_counts(len(tags), len(data))
    return Point(
        measurement=measurement,
        tags={_tag_key(k): check_tag_value(k, v) for k, v in tags.items()},
        fields={check_name(k, "field"): check_field_value(k, v) for k, v in data.items()},
        time_ns=check_time(_json_time(event.get("timestamp"), now_ns), now_ns),
    )


def _tag_key(key: str) -> str:
    check_name(key, "tag")
    if key == SERVER_TAG:
        raise PointError(f"tag {SERVER_TAG!r} is set by growalert")
    return key


def _json_time(value: object, now_ns: int) -> int:
    if value is None:
        return now_ns
    if isinstance(value, bool):
        raise PointError("timestamp is milliseconds since the epoch or an ISO 8601 string")
    if isinstance(value, int):
        if abs(value) > 10**15:
            raise PointError("timestamp is in milliseconds since the epoch")
        return value * 1_000_000
    if isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                raise PointError("timestamp needs a time zone (e.g. Z or +00:00)")
            return int(moment.timestamp() * 1_000_000) * 1_000
    raise PointError("timestamp is milliseconds since the epoch or an ISO 8601 string")


# ---------------------------------------------------------------- line protocol


def parse_lines(body: bytes, *, now_ns: int, precision: str = "ns") -> Parsed:
    if precision not in PRECISIONS:
        raise BatchError("precision is one of ns, us, ms, s", code="bad_precision")
    scale = PRECISIONS[precision]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BatchError("line protocol must be UTF-8") from exc
    lines = [ln for ln in text.split("\n") if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise BatchError("no points in the body", code="empty")
    _too_many(len(lines))
    parsed = Parsed(count=len(lines))
    low = now_ns - max_past_seconds() * 1_000_000_000
    high = now_ns + settings.INGEST_MAX_FUTURE_SECONDS * 1_000_000_000
    for index, raw in enumerate(lines):
        try:
            parsed.points.append(_line(raw.rstrip("\r"), now_ns + index * STEP, scale, low, high))
        except PointError as exc:
            parsed.refuse(index, str(exc))
    return parsed


def split_unescaped(text: str, sep: str, *, quotes: bool = False, limit: int = -1) -> list[str]:
    """Splits at ``sep`` outside backslash escapes (and double quotes when ``quotes``); raises
    PointError (a ValueError) for an unterminated string. Also reads back the stream's lines
    (devices/arrival/lines.py)."""
    if "\\" not in text and not (quotes and '"' in text):
        return text.split(sep, limit)
    parts: list[str] = []
    current: list[str] = []
    escaped = quoted = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif quotes and char == '"':
            current.append(char)
            quoted = not quoted
        elif char == sep and not quoted and (limit < 0 or len(parts) < limit):
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise PointError("unterminated string")
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, escaped = [], False
    for char in text:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def _fast(raw: str, now_ns: int, scale: int, low: int, high: int) -> Point | None:
    match = _FAST.fullmatch(raw)
    if match is None:
        return None
    measurement, tag_text, field_text, stamp = match.groups()
    if (
        tag_text.count(",") > MAX_TAGS
        or field_text.count(",") >= MAX_FIELDS
        or f",{SERVER_TAG}=" in tag_text
        or ",time=" in tag_text
        or ",time=" in field_text
        or field_text.startswith("time=")
        or measurement == "time"
        or _TEXT_FIELD.search(field_text)  # a number sent for a text field
        or not tag_text.isascii()  # a tag value may hold a character that is not printable
        or (tag_text.count(",") > 1 and _duplicate_tag(tag_text))  # InfluxDB refuses it
    ):
        return None  # the general parser words the refusal
    time_ns = int(stamp) * scale if stamp else now_ns
    if stamp and not low <= time_ns <= high:
        return None
    return Point(measurement, None, None, time_ns, head=measurement + tag_text, body=field_text)


def _duplicate_tag(tag_text: str) -> bool:
    keys = [pair.split("=", 1)[0] for pair in tag_text[1:].split(",")]
    return len(set(keys)) != len(keys)


def _line(raw: str, now_ns: int, scale: int, low: int = 0, high: int = 0) -> Point:
    fast = _fast(raw, now_ns, scale, low, high)
    if fast is not None:
        return fast
    sections = split_unescaped(raw.strip(), " ", quotes=True)
    sections = [s for s in sections if s]
    if len(sections) not in (2, 3):
        raise PointError("expected: measurement[,tag=value...] field=value[,...] [timestamp]")
    head = split_unescaped(sections[0], ",")
    measurement = check_name(unescape(head[0]), "measurement")
    tags: dict[str, str] = {}
    for pair in head[1:]:
        key, _, value = _pair(pair)
        tags[_tag_key(key)] = check_tag_value(key, value)
    pairs = split_unescaped(sections[1], ",", quotes=True)
    check_counts(len(tags), len(pairs))
    fields = {}
    for pair in pairs:
        key, _, text = _pair(pair, unescape_value=False)
        fields[check_name(key, "field")] = check_field_value(key, _line_value(key, text))
    if len(sections) == 3:
        if not _INTEGER.match(sections[2]):
            raise PointError("the timestamp is an integer")
        time_ns = int(sections[2]) * scale
    else:
        time_ns = now_ns
    return Point(measurement, tags, fields, check_time(time_ns, now_ns))


def _pair(text: str, *, unescape_value: bool = True) -> tuple[str, str, str]:
    parts = split_unescaped(text, "=", limit=1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise PointError(f"expected key=value, got {text[:70]!r}")
    value = unescape(parts[1]) if unescape_value else parts[1]
    return unescape(parts[0]), "=", value


def _line_value(key: str, text: str) -> object:
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise PointError(f"field {key!r}: unterminated string")
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text[-1] in "iu" and _INTEGER.match(text[:-1]):
        return int(text[:-1])
    if _NUMBER.match(text):
        return float(text)
    raise PointError(f"field {key!r}: {text[:40]!r} is not a number, boolean or string")
