"""Numbers, durations and times as people write them: "14 %", "22.7 °C", "5 min",
"1 h 20 min", "14:32". The one formatting of values for the pages (template filters in
``monitors/templatetags/display.py``), the notifications' texts (``monitors/notify``) and the
reasons a monitor's status gives. Pure: no I/O; times are shown in the current time zone."""

from __future__ import annotations

import functools
import math
import re
from datetime import datetime, timedelta

from django.utils import timezone

MAX_UNIT_LENGTH = 16
MAX_PRECISION = 6
AUTO_DECIMALS = 2  # a value with no precision set: at most this many decimals
# Offered in the editor (any other short text may be typed).
UNIT_SUGGESTIONS = (
    ("°C", "degrees Celsius"),
    ("°F", "degrees Fahrenheit"),
    ("%", "percent (humidity, soil moisture, battery)"),
    ("kPa", "kilopascal (VPD)"),
    ("hPa", "hectopascal (air pressure)"),
    ("dBm", "signal strength"),
    ("ppm", "parts per million (CO₂)"),
    ("lx", "lux (light)"),
    ("µmol/m²/s", "PPFD (light for plants)"),
    ("mS/cm", "electrical conductivity"),
    ("pH", "acidity"),
    ("V", "volt"),
    ("s", "seconds"),
)


def number(value: float | None, precision: int | None = None) -> str:
    """``value`` with ``precision`` decimals, or (no precision) at most two, without trailing
    zeros: 22.6691 → "22.67", 38.39000000000001 → "38.39", 30.0 → "30"."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    if precision is not None:
        text = f"{value:.{precision}f}"
    elif value != 0 and abs(value) < 0.01:
        text = f"{value:.2g}"  # a tiny value keeps its first digits rather than reading 0
    else:
        text = f"{value:.{AUTO_DECIMALS}f}".rstrip("0").rstrip(".")
    return text.lstrip("-") if float(text) == 0 else text


@functools.lru_cache(maxsize=4096)
def quantity(value: float | None, unit: str = "", precision: int | None = None) -> str:
    """A value with its unit: "14 %", "22.7 °C" ("—" for no value). Kept for the last few
    thousand asked: every evaluation's reason writes its value and its thresholds, and the
    thresholds (and a steady sensor's value) are the same tick after tick."""
    shown = number(value, precision)
    return f"{shown} {unit}" if unit and value is not None else shown


_PARTS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def duration(value: timedelta | float | None) -> str:
    """A duration as people write it, its two largest parts: "20 s", "5 min", "1 h 20 min",
    "2 d 3 h" ("" for none)."""
    if value is None:
        return ""
    seconds = round(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds <= 0:
        return "0 s"
    parts = []
    for unit, size in _PARTS:
        if seconds >= size:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
        elif parts:
            parts.append("")  # a zero part still counts as one of the two shown
    return " ".join(p for p in parts[:2] if p)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """'90s', '5m', '1h30m' or a number of seconds; raises ValueError (OverflowError for one
    beyond any timedelta). The syntax of the editor and of the API's duration strings."""
    text = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return timedelta(seconds=float(text))
    if not text or _DURATION.sub("", text):
        raise ValueError(text)
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text)))


def clock(moment: datetime | None, *, now: datetime | None = None) -> str:
    """A moment in the current time zone: "14:32" today, "3 Dec 14:32" another day."""
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    today = timezone.localtime(now or timezone.now()).date()
    if local.date() == today:
        return local.strftime("%H:%M")
    return f"{local.day} {local:%b %H:%M}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
