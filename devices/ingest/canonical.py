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
from devices.ingest.stamps import STEP
from devices.series import SERVER_TAG

_NAME = r"[A-Za-z][A-Za-z0-9_.\-]{0,63}"  # points.NAME
_RESERVED = "|".join(sorted(RESERVED_NAMES))
_NOT_A_TAG = "|".join(sorted({*RESERVED_NAMES, SERVER_TAG}))
_NOT_A_NUMBER_FIELD = "|".join(sorted({*RESERVED_NAMES, *STRING_FIELDS}))
# printable ASCII (the body is read as ASCII) but space, comma, equals, backslash, quote
_TAG_VALUE = rf"[^\x00-\x20,=\\\"\x7f]{{1,{MAX_TAG_VALUE}}}"
# plain decimals without a sign InfluxDB would refuse ("+1"), below 1e15 in magnitude
_NUMBER = r"-?(?:[0-9]{1,15}(?:\.[0-9]*)?|\.[0-9]+)"
# a tag key sent twice in a line: InfluxDB refuses the line (the parser keeps the last)
_TAG = rf",(?!(?:{_NOT_A_TAG})=)(?P<key>{_NAME})={_TAG_VALUE}(?!(?:,[^, ]++)*?,(?P=key)=)"
_FIELD = rf"(?!(?:{_NOT_A_NUMBER_FIELD})=){_NAME}={_NUMBER}"
# One line, from a line's start to its end, in parts: the head (measurement and tags), the last
# tag key (unused), the temperature and the humidity when the fields have them (the first of
# each, as a field: a tag of that name is not one), the fields, the timestamp ('' when none).
# ``findall`` checks and splits the body in one pass: a match is one whole line, so the body is
# canonical exactly when there are as many matches as lines.


def _line_pattern(*, climate: bool) -> re.Pattern[str]:
    """``climate=False``: for a body that does not hold both ``temperature=`` and
    ``humidity=`` (no line has derived fields then): the two lookaheads are empty groups, which
    read as they would have ('') at about 15 % less of the regex's time per line."""
    climate_groups = (
        rf"(?=(?:[^, \n]++,)*?{TEMPERATURE}=([^, \n]+))?"
        rf"(?=(?:[^, \n]++,)*?{HUMIDITY}=([^, \n]+))?"
        if climate
        else "()()"
    )
    return re.compile(
        rf"^((?!(?:{_RESERVED})[ ,]){_NAME}(?:{_TAG}){{0,{MAX_TAGS}}}) "
        + climate_groups
        + rf"({_FIELD}(?:,{_FIELD}){{0,{MAX_FIELDS - 1}}})(?: ([0-9]{{1,19}}))?(?:\n|\Z)",
        re.MULTILINE,
    )


_LINE = _line_pattern(climate=True)
_LINE_WITHOUT_CLIMATE = _line_pattern(climate=False)
_CLIMATE_MARKS = (f"{TEMPERATURE}=", f"{HUMIDITY}=")
_SENT_DERIVED = tuple(f"{name}=" for name in DERIVED_FIELDS)  # a device's own: per point
_STATUS_NAMES = ("battery", "rssi", "firmware")  # service.device_status reads these points


@dataclass(slots=True)
class Batch:
    lines: list[str]  # line protocol for the stream: device tag, derived fields, ns timestamps
    newest_ns: int
    reporting: list[Point]  # the points that may carry battery, RSSI or firmware


def read(body: bytes, *, device_id: int, now_ns: int, scale: int) -> Batch | None:
    """The batch written out, or None when any line is not canonical (``parse.parse_lines``
    then reads the body). ``scale`` is nanoseconds per unit of the body's timestamps.

    Every check is a regex or a string method over the whole body; what is left per line is
    one tuple from ``_LINE``, the derived fields when it has a temperature and a humidity, and
    one f-string (this runs for every reading on the ingest path)."""
    try:
        text = body.decode("ascii").rstrip("\n")
    except UnicodeDecodeError:
        return None
    if not text or text.count("\n") >= settings.INGEST_MAX_POINTS:
        return None
    if any(mark in text for mark in _SENT_DERIVED):
        return None
    line = _LINE if all(mark in text for mark in _CLIMATE_MARKS) else _LINE_WITHOUT_CLIMATE
    rows = line.findall(text)
    if len(rows) != text.count("\n") + 1:  # a line that is not canonical
        return None
    times: range | list[int]
    if text.count(" ") == len(rows):  # one space per line: no line has a timestamp
        times = range(now_ns, now_ns + len(rows) * STEP, STEP)
        newest = times[-1]
    else:
        # each timestamp read once; a line without one is stamped now (+ i steps: stamps.py)
        times = [int(row[5]) * scale if row[5] else now_ns + i * STEP for i, row in enumerate(rows)]
        low = now_ns - max_past_seconds() * 1_000_000_000
        high = now_ns + settings.INGEST_MAX_FUTURE_SECONDS * 1_000_000_000
        newest = max(times)
        if not (low <= min(times) and newest <= high):
            return None  # the per-point parser says which and why
    device_tag = f",{SERVER_TAG}={device_id} "
    lines = [
        f"{head}{device_tag}{fields}{derived_line(float(t), float(h)) if t and h else ''} {time}"
        for (head, _, t, h, fields, _), time in zip(rows, times, strict=True)
    ]
    reporting: list[Point] = []
    if any(name in text for name in _STATUS_NAMES):
        reporting = [
            Point(head.split(",", 1)[0], None, None, time, head=head, body=fields)
            for (head, _, _, _, fields, _), time in zip(rows, times, strict=True)
            if any(name in head or name in fields for name in _STATUS_NAMES)
        ]
    return Batch(lines, newest, reporting)
