"""Writes on sources, monitors and silences. Keyword-only, validated input in, rows out."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

import alerts_core as ac
from monitors import evaluation, influx, pipeline, sources
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
    monitor.save()
    monitor.channels.set(list(channels))
    return monitor


# What a pause, a resume or a new definition rewrites besides the edit itself.
STATE_FIELDS = ("state", "state_version", "status", "status_reason", "status_changed_at")


@transaction.atomic
def monitor_update(
    *, monitor: Monitor, channels: Iterable[Channel] | None = None, **fields: Any
) -> Monitor:
    """Applies an edit to the row as it is now, locked, and writes only what the edit changed:
    state the evaluation pipeline committed since ``monitor`` was read is kept, and an
    evaluation racing the edit waits for it (a restart moves ``state_version`` on, so that
    evaluation's stale write is refused). Pausing, resuming or changing the definition
    restarts the evaluation state (see :func:`_restart`). ``monitor`` is refreshed in place."""
    monitor.refresh_from_db(from_queryset=Monitor.objects.select_for_update())
    changed = {name: value for name, value in fields.items() if getattr(monitor, name) != value}
    was_enabled = monitor.enabled
    for name, value in changed.items():
        setattr(monitor, name, value)
    written = [*changed, "updated_at"]
    if monitor.enabled != was_enabled or DEFINITION_FIELDS.intersection(changed):
        written += _restart(monitor, was_enabled=was_enabled)
    monitor.save(update_fields=written)
    if channels is not None:
        monitor.channels.set(list(channels))
    return monitor


def _restart(monitor: Monitor, *, was_enabled: bool) -> tuple[str, ...]:
    """alerts_core decides: a pause or a new definition ends an open incident and tells the
    channels that heard it fire (``paused`` / ``redefined`` events, through the outbox); a
    resume starts afresh. A new definition for a paused monitor changes no state. Returns the
    fields to write."""
    now = timezone.now()
    state = evaluation.state_of(monitor)
    events: list[ac.Event] = []
    if monitor.enabled and not was_enabled:
        state = ac.resume(state, now)
    elif was_enabled:
        silenced = bool(pipeline.silenced_monitor_ids([monitor], now))
        stop = ac.redefine if monitor.enabled else ac.pause
        state, events = stop(state, now, silenced=silenced)
    else:
        return ()
    if monitor.status != state.status.value:
        monitor.status_changed_at = now
    monitor.state = state.to_dict()
    monitor.state_version += 1
    monitor.status = state.status.value
    monitor.status_reason = state.reason
    if monitor.enabled:
        monitor.next_due_at = now
    pipeline.record_stopped(monitor, state, events, now)
    return STATE_FIELDS


def monitor_set_enabled(*, monitor: Monitor, enabled: bool) -> Monitor:
    return monitor_update(monitor=monitor, enabled=enabled)


def monitor_delete(*, monitor: Monitor) -> None:
    monitor.delete()


def silence_create(*, owner: User, monitor: Monitor | None = None, **fields: Any) -> Silence:
    silence = Silence(owner=owner, monitor=monitor, **fields)
    silence.full_clean()
    silence.save()
    return silence
