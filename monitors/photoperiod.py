"""Day and night (photoperiod) as plain values (pure, no Django): which of a monitor's two sets
of thresholds holds at a moment.

A monitor with ``lights_on`` and ``lights_off`` (wall-clock times in its account's time zone)
is in its day from ``lights_on`` (included) to ``lights_off`` (excluded), and in its night
otherwise; ``lights_on`` later than ``lights_off`` is a day across midnight (lights on 20:00,
off 08:00). The wall clock decides, so daylight saving time is followed by itself: lights on at
06:00 is 05:00 UTC in an Amsterdam winter and 04:00 UTC in its summer. On the spring night a
time in the skipped hour (02:30) is passed at 03:00; on the autumn night a time in the repeated
hour counts both times the clock shows it.

The live pipeline, the dry run and the backtest all ask :func:`is_night` with the moment of the
evaluation, so they can never disagree about which thresholds held.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time
from functools import lru_cache

DEFAULT_ZONE = "UTC"


@lru_cache(maxsize=512)
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The named time zone; UTC for a name that is not one (a profile edited past validation
    must not stop its monitors)."""
    try:
        return zoneinfo.ZoneInfo(name or DEFAULT_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(DEFAULT_ZONE)


def is_day(moment: datetime, lights_on: time, lights_off: time, zone_name: str) -> bool:
    """Whether ``moment`` (aware) falls in the day of this photoperiod."""
    local = moment.astimezone(zone(zone_name)).time().replace(tzinfo=None)
    if lights_on < lights_off:
        return lights_on <= local < lights_off
    return local >= lights_on or local < lights_off


def is_night(
    moment: datetime, lights_on: time | None, lights_off: time | None, zone_name: str
) -> bool:
    """Whether the night thresholds hold at ``moment``: never without a photoperiod."""
    if lights_on is None or lights_off is None or lights_on == lights_off:
        return False
    return not is_day(moment, lights_on, lights_off, zone_name)
