"""Writes on sources, monitors and silences. Keyword-only, validated input in, rows out."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

import alerts_core as ac
from monitors import crypto, live
from monitors.evaluate import fleet, pipeline
from monitors.evaluate.audience import silenced_monitor_ids, silenced_series
from monitors.influxdb import client as influx
from monitors.influxdb import connect
from monitors.models import Channel, Monitor, Silence, Source, Status
from monitors.validation import interval_floor_error

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
        "group_by",
        "series_filter",
    }
)


def _validate_source(source: Source, *, url_changed: bool) -> None:
    """Every rule of a source's write, as field errors: each field's bounds, a name the owner
    has not used yet, a new URL through the SSRF guard (hosted sources are growalert's own),
    then the credentials the auth scheme needs."""
    errors: dict[str, list[str]] = {}
    try:
        source.full_clean(validate_constraints=False)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if "name" not in errors:
        try:
            source.validate_constraints()  # its one constraint: a name per owner
        except ValidationError:
            errors["name"] = [_name_taken(source)]
    if "url" not in errors and url_changed and not source.hosted:
        try:
            connect.check_url(source.url)
        except ValueError as exc:
            errors["url"] = [str(exc)]
    if not errors:
        errors = _credential_errors(source)
    if errors:
        raise ValidationError(errors)


def _credential_errors(source: Source) -> dict[str, list[str]]:
    scheme = source.auth_scheme
    if scheme == Source.AuthScheme.BASIC and not source.username:
        return {"username": ["basic auth needs a username"]}
    if scheme != Source.AuthScheme.NONE and not source.has_secret:
        return {"secret": [f"{scheme} auth needs a secret"]}
    return {}


def _name_taken(source: Source) -> str:
    return f'You already have a source named "{source.name}".'


def source_create(*, owner: User, secret: str = "", hosted: bool = False, **fields: Any) -> Source:
    """``hosted=True`` only for sources growalert creates on its own InfluxDB (the demo)."""
    source = Source(owner=owner, hosted=hosted, **fields)
    source.secret = secret
    _validate_source(source, url_changed=True)
    _save_source(source)
    return source


def _save_source(source: Source) -> None:
    """Saves; a name another request took between the validation and here (two creates at
    once) is the same field error the validation gives, not a server error."""
    try:
        with transaction.atomic():
            source.save()
    except IntegrityError as exc:
        if "source_unique_name_per_owner" not in str(exc):
            raise
        raise ValidationError({"name": [_name_taken(source)]}) from exc


# What a hosted source connects to: growalert's, not its owner's, to change.
HOSTED_FIXED_FIELDS = ("url", "database", "org", "flavor", "auth_scheme", "username")


def source_update(*, source: Source, secret: str | None = None, **fields: Any) -> Source:
    fields.pop("hosted", None)  # never changed by an edit
    if source.hosted:
        changed = [
            n for n in HOSTED_FIXED_FIELDS if n in fields and fields[n] != getattr(source, n)
        ]
        if secret is not None:
            changed.append("secret")
        if changed:
            message = (
                "growalert manages this source's connection: only its name and timeout can change"
            )
            raise ValidationError({name: [message] for name in changed})
    url_before = source.url
    for name, value in fields.items():
        setattr(source, name, value)
    if secret is not None:
        source.secret = secret
    _validate_source(source, url_changed=source.url != url_before)
    _save_source(source)
    return source


PUSH_KEY_PREFIX = "grp_"


@dataclass(frozen=True)
class PushSetup:
    """What the customer runs on their InfluxDB to push its writes (shown once: it holds the
    key)."""

    key: str
    url: str
    subscription: str


def source_push_enable(*, source: Source) -> PushSetup:
    """Gives the source a new push key (the one before stops working within
    ``INGEST_KEY_CACHE_SECONDS``) and says how to subscribe with it (docs/arrival.md)."""
    if source.hosted:
        raise ValidationError(
            {"detail": ["growalert's own source needs no push: its readings arrive at /ingest"]}
        )
    key, prefix, digest = crypto.new_key(PUSH_KEY_PREFIX)
    source.push_key_hash, source.push_key_prefix = digest, prefix
    source.save(update_fields=["push_key_hash", "push_key_prefix"])
    site = urlsplit(settings.SITE_URL)
    url = f"{site.scheme}://{site.netloc}/influx"
    destination = f"{site.scheme}://growalert:{key}@{site.netloc}/influx"
    subscription = (
        f'CREATE SUBSCRIPTION "growalert" ON {influx.quote_ident(source.database)}."autogen" '
        f"DESTINATIONS ALL '{destination}'"
    )
    return PushSetup(key=key, url=url, subscription=subscription)


def source_push_disable(*, source: Source) -> Source:
    """The source's InfluxDB no longer pushes: its monitors are polled again (within
    ``INGEST_KEY_CACHE_SECONDS`` for the key, ``arrival.PUSHING_TTL_MS`` for the poller)."""
    source.push_key_hash = source.push_key_prefix = ""
    source.save(update_fields=["push_key_hash", "push_key_prefix"])
    return source


def source_check(*, source: Source) -> Source:
    """Pings the source and records whether it answered (and its version), and whether the
    database or bucket exists. A URL the guard refuses (also one planted in the database
    without validation) is never connected to; the customer reads the same sentence for a
    refused address, a DNS failure, a closed port and a timeout (the detail is logged)."""
    try:
        version = connect.ping(source)
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
    # first due within min(interval, a minute), set by the schedule trigger (migration 0011)
    monitor.full_clean(validate_constraints=False)  # the field validators carry the CHECKs
    _check_plan_floor(monitor, previous=None)
    monitor.save()
    monitor.channels.set(list(channels))
    live.changed_on_commit([owner.pk], [monitor.pk])
    return monitor


def _check_plan_floor(monitor: Monitor, *, previous: timedelta | None) -> None:
    """The interval the owner's plan allows (the CHECK constraint holds only the absolute
    floor, 1 s): the API and the pages refuse it first, this catches every other caller."""
    if message := interval_floor_error(monitor.owner, monitor.interval, previous=previous):
        raise ValidationError({"interval": [message]})


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
    monitor.full_clean(validate_constraints=False)  # the field validators carry the CHECKs
    if "interval" in changed:
        _check_plan_floor(monitor, previous=None)
    monitor.save(update_fields=written)
    if channels is not None:
        monitor.channels.set(list(channels))
    live.changed_on_commit([monitor.owner_id], [monitor.pk])
    return monitor


def _restart(monitor: Monitor, *, was_enabled: bool) -> tuple[str, ...]:
    """alerts_core decides: a pause or a new definition ends an open incident and tells the
    channels that heard it fire (``paused`` / ``redefined`` events, through the outbox); a
    resume starts afresh. A new definition for a paused monitor changes no state. Returns the
    fields to write."""
    now = timezone.now()
    state = monitor.alert_state()
    events: list[ac.Event] = []
    if monitor.enabled and not was_enabled:
        state = ac.resume(state, now)
    elif was_enabled:
        silenced = bool(silenced_monitor_ids([monitor], now))
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
    if monitor.enabled and was_enabled:
        # a new definition is checked at once; a resume is due within min(interval, a minute),
        # as the schedule trigger writes it (migration 0011), so mass resumes do not pile up
        monitor.next_due_at = now
    pipeline.record_stopped(monitor, state, events, now)
    if was_enabled:
        _stop_series(monitor, now)
    return STATE_FIELDS


def _stop_series(monitor: Monitor, now: datetime) -> None:
    """A fleet monitor's series stop as the monitor does (see ``fleet.stop_series``)."""
    everything = bool(silenced_monitor_ids([monitor], now))
    quiet = None if everything else silenced_series([monitor.pk], now).get(monitor.pk, set())
    fleet.stop_series(monitor, paused=not monitor.enabled, silenced=quiet, now=now)


def monitor_set_enabled(*, monitor: Monitor, enabled: bool) -> Monitor:
    return monitor_update(monitor=monitor, enabled=enabled)


HEALTH_MONITOR_KEPT = (
    "this is a device's health monitor: pause it to switch it off; it is deleted with its device"
)


def monitor_delete(*, monitor: Monitor) -> None:
    """Deletes a monitor; a device's health monitor is paused instead (devices/health.py keeps
    one of each per device), so it is refused here."""
    if monitor.device_id is not None:
        raise ValidationError({"detail": [HEALTH_MONITOR_KEPT]})
    monitor_id = monitor.pk
    monitor.delete()
    live.changed_on_commit([monitor.owner_id], [monitor_id])


def silence_create(*, owner: User, monitor: Monitor | None = None, **fields: Any) -> Silence:
    silence = Silence(owner=owner, monitor=monitor, **fields)
    silence.full_clean()
    silence.save()
    # the pages show it (and the chart shades it): one monitor's, or all of them
    live.changed_on_commit([owner.pk], None if monitor is None else [monitor.pk])
    return silence


def silence_end(*, silence: Silence, now: datetime | None = None) -> Silence | None:
    """Ends a silence now. One that has not started yet, or a daily window, is deleted (None
    is returned). The
    monitors it covered notify again from their next check, which tells what changed while
    it lasted (alerts_core's catch-up)."""
    now = now or timezone.now()
    covered = None if silence.monitor_id is None else [silence.monitor_id]
    live.changed_on_commit([silence.owner_id], covered)
    if silence.starts_at >= now or silence.daily:  # a daily window: no more of them
        silence.delete()
        return None
    if silence.ends_at > now:
        silence.ends_at = now
        silence.save(update_fields=["ends_at"])
    return silence
