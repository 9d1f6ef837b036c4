"""A validated reading and its line protocol; the bounds every point is held to.

One type per field name, decided by the name alone, so that InfluxDB never meets a field written
with two types (it would drop the later points after the device was told 202): every field is a
float (``12``, ``12i``, ``12u``, ``12.0`` are the same; ``true``/``false`` are 1 and 0) except the
text fields in ``STRING_FIELDS``, which hold strings only. A string sent for a numeric field, or
a number for a text field, refuses the point with a sentence naming the field.
``derive`` is the one place where fields computed from a reading (VPD, dew point...) are added.
"""

from __future__ import annotations

import functools
import math
import re

from django.conf import settings

from devices import hosted
from devices.derived import DERIVED_FIELDS, HUMIDITY, TEMPERATURE, derived_fields, derived_line
from devices.series import SERVER_TAG

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
NAME_RULE = "names are 1 to 64 letters, digits, '_', '.' or '-', starting with a letter"
RESERVED_NAMES = frozenset({"time"})
MAX_TAGS = 20
MAX_FIELDS = 50
MAX_TAG_VALUE = 200
MAX_STRING_FIELD = 256
MAX_MAGNITUDE = 1e15
STATUS_FIELDS = ("battery", "rssi")  # also update the device row (devices.services)
FIRMWARE = "firmware"  # a string field or a tag
MESSAGE = "message"  # free text a device attaches to a reading (an error code, a note)
STRING_FIELDS = frozenset({FIRMWARE, MESSAGE})  # every other field is a float
TEXT_RULE = f"only {FIRMWARE!r} and {MESSAGE!r} hold text"

FieldValue = float | str


class PointError(ValueError):
    """Why one point is refused (a sentence for the device's developer)."""


class Point:
    """A reading. ``head`` and ``body`` keep the measurement+tags and the fields as received
    when they were already canonical line protocol (the parser's fast path): writing the point
    does not rebuild them, and its ``tags`` and ``fields`` are only split out when asked for.
    Add fields with ``add_field``, which keeps both forms in step."""

    __slots__ = ("_fields", "_tags", "body", "head", "measurement", "time_ns")

    def __init__(
        self,
        measurement: str,
        tags: dict[str, str] | None,
        fields: dict[str, FieldValue] | None,
        time_ns: int,
        head: str = "",
        body: str = "",
    ) -> None:
        self.measurement, self.time_ns, self.head, self.body = measurement, time_ns, head, body
        self._tags, self._fields = tags, fields

    @property
    def tags(self) -> dict[str, str]:
        if self._tags is None:  # a fast-path head: names and values need no unescaping
            tag_text = self.head[len(self.measurement) + 1 :]
            tags: dict[str, str] = {}
            for pair in tag_text.split(",") if tag_text else ():
                key, value = pair.split("=", 1)
                tags[key] = value
            self._tags = tags
        return self._tags

    @property
    def fields(self) -> dict[str, FieldValue]:
        if self._fields is None:  # a fast-path body: plain names and decimal numbers
            pairs = (pair.split("=", 1) for pair in self.body.split(","))
            self._fields = {key: float(value) for key, value in pairs}
        return self._fields

    def mentions(self, name: str) -> bool:
        """Whether the point may have a tag or field ``name`` (cheap: no splitting)."""
        if self._fields is not None and name in self._fields:
            return True
        if self._tags is not None:
            return name in self._tags
        return name in self.head or name in self.body

    def add_field(self, name: str, value: FieldValue) -> None:
        value = check_field_value(check_name(name, "field"), value)
        self.fields[name] = value
        if self.body:
            self.body += f",{name}={_field(value)}"

    def add_derived(self, fields: dict[str, float]) -> None:
        """Adds fields growalert computed itself (finite floats under names it chose, so
        unchecked: this runs for every reading)."""
        self.fields.update(fields)
        if self.body:
            self.body += "".join(f",{name}={value!r}" for name, value in fields.items())

    def mentions_any(self, names: tuple[str, ...]) -> bool:
        return any(self.mentions(name) for name in names)

    def __repr__(self) -> str:
        return f"Point({self.measurement!r}, {self.tags!r}, {self.fields!r}, {self.time_ns})"


def check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise PointError(f"{what} {str(name)[:70]!r}: {NAME_RULE}")
    if name in RESERVED_NAMES:
        raise PointError(f"{what} {name!r} is reserved")
    return name


def check_tag_value(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise PointError(f"tag {key!r}: values are strings")
    if not value or len(value) > MAX_TAG_VALUE:
        raise PointError(f"tag {key!r}: values are 1 to {MAX_TAG_VALUE} characters")
    if not value.isprintable():
        raise PointError(f"tag {key!r}: control characters are not allowed")
    return value


def check_field_value(key: str, value: object) -> FieldValue:
    """The value as stored: a float, or a string for the fields in STRING_FIELDS."""
    if key in STRING_FIELDS:
        return _check_text(key, value)
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise PointError(f"field {key!r}: NaN and infinity are not allowed")
        if abs(number) > MAX_MAGNITUDE:
            raise PointError(f"field {key!r}: numbers are at most 1e15 in magnitude")
        return number
    if isinstance(value, str):
        raise PointError(
            f"field {key!r}: {value[:40]!r} is text, {key!r} holds numbers ({TEXT_RULE})"
        )
    raise PointError(f"field {key!r}: values are numbers or booleans ({TEXT_RULE})")


def _check_text(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise PointError(f'field {key!r} holds text: send it as a string ("...")')
    if len(value) > MAX_STRING_FIELD:
        raise PointError(f"field {key!r}: strings are at most {MAX_STRING_FIELD} characters")
    if not value.isprintable():
        raise PointError(f"field {key!r}: control characters (newlines too) are not allowed")
    return value


def check_time(time_ns: int, now_ns: int) -> int:
    if time_ns > now_ns + settings.INGEST_MAX_FUTURE_SECONDS * 1_000_000_000:
        raise PointError(
            f"timestamp is more than {settings.INGEST_MAX_FUTURE_SECONDS} s in the future "
            "(check the device's clock and the precision)"
        )
    past = max_past_seconds()
    if time_ns < now_ns - past * 1_000_000_000:
        raise PointError(
            f"timestamp is more than {past} s in the past "
            "(check the device's clock and the precision)"
        )
    return time_ns


def max_past_seconds() -> int:
    """INGEST_MAX_PAST_SECONDS, or less when the hosted retention is shorter: InfluxDB would drop
    a point older than its retention policy after the device was told 202."""
    return _max_past(settings.INGEST_MAX_PAST_SECONDS, hosted.retention())


@functools.lru_cache(maxsize=8)
def _max_past(limit: int, retention: str) -> int:
    kept = int(retention[:-1]) * {"h": 3600, "d": 86400, "w": 7 * 86400}[retention[-1]]
    margin = min(3600, kept // 10)  # the retention is enforced per shard, cut on the hour
    return min(limit, kept - margin)


def check_counts(tags: int, fields: int) -> None:
    if fields == 0:
        raise PointError("a point needs at least one field")
    if fields > MAX_FIELDS:
        raise PointError(f"at most {MAX_FIELDS} fields per point")
    if tags > MAX_TAGS:
        raise PointError(f"at most {MAX_TAGS} tags per point")


def derive(points: list[Point]) -> None:
    """Adds fields computed from each reading, in place: ``vpd`` (kPa) and ``dew_point`` (°C)
    from ``temperature`` (°C) and ``humidity`` (%RH); see devices/derived.py."""
    for point in points:
        if not (point.mentions(TEMPERATURE) and point.mentions(HUMIDITY)):
            continue
        if point._fields is None and not any(mark in point.body for mark in _SENT_DERIVED):
            # a fast-path reading (canonical line protocol, fields not split out): read the
            # two numbers and append the derived fields as text
            temperature = _TEMPERATURE_VALUE.search(point.body)
            humidity = _HUMIDITY_VALUE.search(point.body)
            if temperature and humidity:
                point.body += derived_line(float(temperature[1]), float(humidity[1]))
            continue
        added = derived_fields(point.fields)
        if added:
            point.add_derived(added)


_TEMPERATURE_VALUE = re.compile(rf"(?:^|,){TEMPERATURE}=([^,]+)")
_HUMIDITY_VALUE = re.compile(rf"(?:^|,){HUMIDITY}=([^,]+)")
_SENT_DERIVED = tuple(f"{name}=" for name in DERIVED_FIELDS)  # a device's own: kept


def _escape_tag(text: str) -> str:
    if "," in text or "=" in text or " " in text or "\\" in text:
        return (
            text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
        )
    return text


def _field(value: FieldValue) -> str:
    if isinstance(value, float):
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_line(point: Point, device_id: int) -> str:
    """Line protocol (nanosecond timestamp) with growalert's device_id tag. Names match NAME,
    so only tag values and string fields need escaping."""
    head = point.head
    if not head:
        head = point.measurement
        for key, value in point.tags.items():
            head += f",{key}={_escape_tag(value)}"
    body = point.body or ",".join(f"{key}={_field(value)}" for key, value in point.fields.items())
    return f"{head},{SERVER_TAG}={device_id} {body} {point.time_ns}"
