"""A line protocol batch already in canonical form, read with one regex for the whole body.

Most devices send every line in the same plain form: names of letters, digits, ``_ . -``; tag
values of printable ASCII needing no escape; plain decimal numbers below 1e15 (finite by
construction); optional integer timestamps. ``read`` checks a whole body of such lines with one
``fullmatch`` (the same bounds as the per-point checks: name rules, reserved names, text
fields, counts of tags and fields, sizes) and writes it out for the stream without building a
``Point`` per reading. Anything else (escapes, strings, booleans, integers with ``i``,
exponents, ``+1``, a comment or blank line, a timestamp outside the window, a duplicate tag, a
device's own VPD or dew point...) makes it answer None, and the per-point parser
(``parse.parse_lines``) reads the body and words every refusal: this module never refuses
anything itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from devices.derived import DERIVED_FIELDS, HUMIDITY, TEMPERATURE, derived_line
from devices.ingest.points import (
    MAX_FIELDS,
    MAX_TAG_VALUE,
    MAX_TAGS,
    RESERVED_NAMES,
    STRING_FIELDS,
    Point,
    max_past_seconds,
)
from devices.series import SERVER_TAG

_NAME = r"[A-Za-z][A-Za-z0-9_.\-]{0,63}"  # points.NAME
_RESERVED = "|".join(sorted(RESERVED_NAMES))
_NOT_A_TAG = "|".join(sorted({*RESERVED_NAMES, SERVER_TAG}))
_NOT_A_NUMBER_FIELD = "|".join(sorted({*RESERVED_NAMES, *STRING_FIELDS}))
# printable ASCII (the body is read as ASCII) but space, comma, equals, backslash, quote
_TAG_VALUE = rf"[^\x00-\x20,=\\\"\x7f]{{1,{MAX_TAG_VALUE}}}"
# plain decimals without a sign InfluxDB would refuse ("+1"), below 1e15 in magnitude
_NUMBER = r"-?(?:[0-9]{1,15}(?:\.[0-9]*)?|\.[0-9]+)"
_TAG = rf",(?!(?:{_NOT_A_TAG})=){_NAME}={_TAG_VALUE}"
_FIELD = rf"(?!(?:{_NOT_A_NUMBER_FIELD})=){_NAME}={_NUMBER}"
_LINE = (
    rf"(?!(?:{_RESERVED})[ ,]){_NAME}(?:{_TAG}){{0,{MAX_TAGS}}}"
    rf" {_FIELD}(?:,{_FIELD}){{0,{MAX_FIELDS - 1}}}(?: [0-9]{{1,19}})?"
)
_BODY = re.compile(rf"{_LINE}(?:\n{_LINE})*")
_TEMPERATURE = re.compile(rf"(?:^|,){TEMPERATURE}=([^,]+)")
_HUMIDITY = re.compile(rf"(?:^|,){HUMIDITY}=([^,]+)")
_SENT_DERIVED = tuple(f"{name}=" for name in DERIVED_FIELDS)  # a device's own: per point
_STATUS_NAMES = ("battery", "rssi", "firmware")  # service.device_status reads these points


@dataclass(slots=True)
class Batch:
    lines: list[str]  # line protocol for the stream: device tag, derived fields, ns timestamps
    newest_ns: int
    reporting: list[Point]  # the points that may carry battery, RSSI or firmware


def read(body: bytes, *, device_id: int, now_ns: int, scale: int) -> Batch | None:
    """The batch written out, or None when any line is not canonical (``parse.parse_lines``
    then reads the body). ``scale`` is nanoseconds per unit of the body's timestamps."""
    try:
        text = body.decode("ascii").rstrip("\n")
    except UnicodeDecodeError:
        return None
    if not text or text.count("\n") >= settings.INGEST_MAX_POINTS:
        return None
    if any(mark in text for mark in _SENT_DERIVED) or _BODY.fullmatch(text) is None:
        return None
    low = now_ns - max_past_seconds() * 1_000_000_000
    high = now_ns + settings.INGEST_MAX_FUTURE_SECONDS * 1_000_000_000
    scan = any(name in text for name in _STATUS_NAMES)
    device_tag = f",{SERVER_TAG}={device_id} "
    lines: list[str] = []
    append = lines.append
    reporting: list[Point] = []
    newest = 0
    for index, line in enumerate(text.split("\n")):
        parts = line.split(" ")
        head, fields = parts[0], parts[1]
        if len(parts) == 3:
            time_ns = int(parts[2]) * scale
            if not low <= time_ns <= high:
                return None  # the per-point parser says which and why
        else:
            time_ns = now_ns + index
        if time_ns > newest:
            newest = time_ns
        if head.count(",") > 1 and _duplicate_tag(head):
            return None  # InfluxDB refuses a line with a tag twice; the parser keeps the last
        if scan and any(name in line for name in _STATUS_NAMES):
            measurement = head.split(",", 1)[0]
            reporting.append(Point(measurement, None, None, time_ns, head=head, body=fields))
        if TEMPERATURE in fields and HUMIDITY in fields:
            temperature, humidity = _TEMPERATURE.search(fields), _HUMIDITY.search(fields)
            if temperature and humidity:
                fields += derived_line(float(temperature[1]), float(humidity[1]))
        append(f"{head}{device_tag}{fields} {time_ns}")
    return Batch(lines, newest, reporting)


def _duplicate_tag(head: str) -> bool:
    keys = [pair.split("=", 1)[0] for pair in head.split(",")[1:]]
    return len(set(keys)) != len(keys)
