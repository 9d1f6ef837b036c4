"""Writes on sources, monitors and silences. Keyword-only, validated input in, rows out."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from monitors import influx, sources
from monitors.models import Channel, Monitor, Silence, Source, Status

logger = logging.getLogger(__name__)

# Changing any of these changes what the monitor means: its state starts afresh.
DEFINITION_FIELDS = frozenset(
    {
        "source",
        "measurement",
        "field",
        "tags",
        "aggregation",
        "percentile",
        "window",
        "raw_query",
        "comparator",
        "critical",
        "critical_high",
        "warning",
        "warning_high",
        "recovery",
    }
)


def source_create(*, owner: User, secret: str = "", **fields: Any) -> Source:
    source = Source(owner=owner, **fields)
    source.secret = secret
    source.full_clean()
    source.save()
    return source


def source_update(*, source: Source, secret: str | None = None, **fields: Any) -> Source:
    for name, value in fields.items():
        setattr(source, name, value)
    if secret is not None:
        source.secret = secret
    source.full_clean()
    source.save()
    return source


def source_check(*, source: Source) -> Source:
    """Pings the source and records whether it answered (and its version)."""
    try:
        version = sources.ping(source)
    except influx.InfluxError as exc:
        source.last_check_ok = False
        source.last_check_error = str(exc)[:300]
    else:
        source.last_check_ok = True
        source.last_check_error = ""
        source.server_version = version[:50]
    source.last_checked_at = timezone.now()
    source.save(
        update_fields=["last_check_ok", "last_check_error", "server_version", "last_checked_at"]
    )
    return source


@transaction.atomic
def monitor_create(*, owner: User, channels: Iterable[Channel] = (), **fields: Any) -> Monitor:
    monitor = Monitor(owner=owner, **fields)
    monitor.status = Status.OK if monitor.enabled else Status.PAUSED
    monitor.next_due_at = timezone.now()
    monitor.full_clean(validate_constraints=False)  # the field validators carry the CHECKs
    monitor.save()
    monitor.channels.set(list(channels))
    return monitor


@transaction.atomic
def monitor_update(
    *, monitor: Monitor, channels: Iterable[Channel] | None = None, **fields: Any
) -> Monitor:
    """Applies an edit. A new definition resets the evaluation state; the monitor is due now."""
    redefined = any(
        getattr(monitor, name) != value
        for name, value in fields.items()
        if name in DEFINITION_FIELDS
    )
    was_enabled = monitor.enabled
    for name, value in fields.items():
        setattr(monitor, name, value)
    if redefined or monitor.enabled != was_enabled:
        _reset_state(monitor)
    monitor.full_clean(validate_constraints=False)  # the field validators carry the CHECKs
    monitor.save()
    if channels is not None:
        monitor.channels.set(list(channels))
    return monitor


def _reset_state(monitor: Monitor) -> None:
    monitor.state = {}
    monitor.state_version += 1
    monitor.status = Status.OK if monitor.enabled else Status.PAUSED
    monitor.status_reason = "" if monitor.enabled else "paused"
    monitor.status_changed_at = timezone.now()
    monitor.next_due_at = timezone.now()


def monitor_set_enabled(*, monitor: Monitor, enabled: bool) -> Monitor:
    return monitor_update(monitor=monitor, enabled=enabled)


def monitor_delete(*, monitor: Monitor) -> None:
    monitor.delete()


def silence_create(*, owner: User, monitor: Monitor | None = None, **fields: Any) -> Silence:
    silence = Silence(owner=owner, monitor=monitor, **fields)
    silence.full_clean()
    silence.save()
    return silence
