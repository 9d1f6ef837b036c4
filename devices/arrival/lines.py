"""Reading back the line protocol the ingest put in the stream (devices/ingest/points.to_line):
measurement, tags, numeric fields and time. Lines without escapes or strings (nearly all) are
split directly; the others go through a small scanner."""

from __future__ import annotations

from dataclasses import dataclass

from devices.ingest.parse import split_unescaped, unescape


@dataclass(frozen=True, slots=True)
class Reading:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, float]
    time_ms: int
    series: str  # measurement and tags as written: the point's series


def parse(line: str) -> Reading | None:
    """None for a line that does not read as a point (it is not evaluated)."""
    try:
        if "\\" in line or '"' in line:
            head, body, stamp = _split_escaped(line)
        else:
            return _plain(line)
        measurement, *pairs = split_unescaped(head, ",")
        tags = dict(_pair(p) for p in pairs)
        fields = {}
        for item in split_unescaped(body, ",", quotes=True):
            name, value = _pair(item, unescape_value=False)
            parsed = number(value)
            if parsed is not None:
                fields[name] = parsed
        return Reading(unescape(measurement), tags, fields, int(stamp) // 1_000_000, head)
    except ValueError:
        return None


def _plain(line: str) -> Reading:
    """A line without escapes or strings (nearly all): split directly."""
    head, body, stamp = line.split(" ")
    measurement, _, tag_text = head.partition(",")
    tags = dict(pair.split("=", 1) for pair in tag_text.split(",")) if tag_text else {}
    fields = {}
    for item in body.split(","):
        name, _, value = item.partition("=")
        parsed = number(value)
        if parsed is not None:
            fields[name] = parsed
    return Reading(measurement, tags, fields, int(stamp) // 1_000_000, head)


def number(text: str) -> float | None:
    if text.startswith('"'):
        return None
    if text in ("true", "t", "T", "True", "TRUE"):
        return 1.0
    if text in ("false", "f", "F", "False", "FALSE"):
        return 0.0
    return float(text.rstrip("iu"))


def _pair(text: str, *, unescape_value: bool = True) -> tuple[str, str]:
    parts = split_unescaped(text, "=", limit=1)
    if len(parts) != 2:
        raise ValueError(text)
    return unescape(parts[0]), unescape(parts[1]) if unescape_value else parts[1]


def _split_escaped(line: str) -> tuple[str, str, str]:
    parts = split_unescaped(line, " ", quotes=True)
    if len(parts) != 3:
        raise ValueError(line)
    return parts[0], parts[1], parts[2]
