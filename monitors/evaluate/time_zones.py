"""The time zone a monitor's photoperiod follows: its owner's (the accounts Profile's), read
once for a batch of monitors and kept on each (``Monitor.time_zone``) for the evaluation.

Only monitors with a photoperiod ask for their thresholds; the notifications of any monitor
show their times in it too (``every``: the batches that write notifications read it for all
their monitors, still one query). A user without a profile is in UTC, as the pages show
them."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model

from monitors.models import Monitor
from monitors.photoperiod import DEFAULT_ZONE


def attach(monitors: Iterable[Monitor], *, refresh: bool = False, every: bool = False) -> None:
    """Sets ``time_zone`` on the monitors with a photoperiod (``every``: on all the monitors)
    that lack it (one query); with ``refresh``, on all of them (a worker keeps monitors between
    ticks: monitors/evaluate/resident.py, while the owner may change the account's time
    zone)."""
    wanting = [
        m for m in monitors if (every or m.has_photoperiod) and (refresh or m.time_zone is None)
    ]
    if not wanting:
        return
    owners = {m.owner_id for m in wanting}
    zones = dict(
        get_user_model().objects.filter(pk__in=owners).values_list("pk", "profile__time_zone")
    )
    for monitor in wanting:
        monitor.time_zone = zones.get(monitor.owner_id) or DEFAULT_ZONE


def of(monitor: Monitor) -> str:
    """The monitor's time zone (read now if no one attached it)."""
    if not monitor.has_photoperiod:
        return DEFAULT_ZONE
    attach([monitor])
    return monitor.time_zone or DEFAULT_ZONE


def shown(monitor: Monitor) -> str:
    """The zone the monitor's notifications show times in: its owner's, photoperiod or not
    (read now if no one attached it)."""
    attach([monitor], every=True)
    return monitor.time_zone or DEFAULT_ZONE


def of_owner(owner_id: int) -> str:
    """The zone an owner's notifications show times in, as :func:`attach` reads it (a preview
    of the owner's messages without a real alert uses it)."""
    found = (
        get_user_model()
        .objects.filter(pk=owner_id)
        .values_list("profile__time_zone", flat=True)
        .first()
    )
    return found or DEFAULT_ZONE
