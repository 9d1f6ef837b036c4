"""Who hears an evaluation: the monitors (and fleet series) under an active silence, and each
monitor's deliverable channels. Read by the pipeline, the fleet path and the services."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from monitors.models import (
    Channel,
    Monitor,
    covering_series_silences,
    covering_silences,
)


def silenced_monitor_ids(monitors: list[Monitor], now: datetime) -> set[int]:
    """Monitors under an active silence: their own, or one of their owner's that covers all.
    A silence of one series (``series_key``) silences that series only."""
    owners = {m.owner_id for m in monitors}  # a batch has few owners, and they few silences
    silences = [(s.owner_id, s.monitor_id) for s in covering_silences(owners, now)]
    everything = {owner for owner, monitor in silences if monitor is None}
    single = {monitor for _, monitor in silences if monitor is not None}
    return {m.id for m in monitors if m.id in single or m.owner_id in everything}


def silenced_series(monitor_ids: list[int], now: datetime) -> dict[int, set[str]]:
    """The series keys under an active silence of their own, by monitor."""
    found: dict[int, set[str]] = defaultdict(set)
    for silence in covering_series_silences(monitor_ids, now):
        assert silence.monitor_id is not None  # a series silence names its monitor
        found[silence.monitor_id].add(silence.series_key)
    return found


def deliverable_channels(monitor_ids: set[int]) -> dict[int, list[Channel]]:
    """Each monitor's enabled, verified channels: the ones its notifications go to."""
    channels: dict[int, list[Channel]] = {}
    links = Monitor.channels.through.objects.filter(
        monitor_id__in=monitor_ids, channel__enabled=True, channel__verified=True
    ).select_related("channel")
    for link in links:
        channels.setdefault(link.monitor_id, []).append(link.channel)
    return channels
