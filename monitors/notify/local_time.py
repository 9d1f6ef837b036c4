"""Times in a notification as its reader lives them: in the monitor owner's time zone, which the
payload carries (``time_zone``, an IANA name such as "Europe/Amsterdam"). A payload without it
(written before it was added) or with a zone this machine does not know is shown in UTC, and
every printed time names its zone ("01:15 CET", "01:15 UTC")."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, tzinfo
from typing import Any

MAX_ZONE_NAME = 64


def zone(payload: dict[str, Any] | None) -> tzinfo:
    """The payload's time zone; UTC when it has none or one that is not known."""
    name = (payload or {}).get("time_zone")
    if not isinstance(name, str) or not name or len(name) > MAX_ZONE_NAME:
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


def moment(iso: Any) -> datetime | None:
    """A stored ISO time, or None when there is none or it cannot be read."""
    try:
        return datetime.fromisoformat(str(iso)) if iso else None
    except ValueError:
        return None


def clock(when: datetime, payload: dict[str, Any] | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``when`` in the payload's zone, followed by the zone's abbreviation: "2026-12-02 02:15
    CET". A naive time is taken to be UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    local = when.astimezone(zone(payload))
    return f"{local.strftime(fmt)} {local.tzname() or 'UTC'}"
