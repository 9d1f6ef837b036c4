"""Retention: which old rows may go, and the run that deletes them in small batches
(``manage.py prune``, the ``prune-old-rows`` beat task; docs/operations.md "Retention").

Never deleted: a notification still pending or being sent (a retry is still due), one whose
incident is still open, one retried since the cutoff; an open incident, an incident a kept
notification points at, and each monitor's latest incident (the monitor's page shows when it
last fired); a failed Stripe event; a fleet series that is firing, failing or has an open
incident, however long it has been gone. The engine (batches, SKIP LOCKED, the time budget) is
shared/pruning.py.

Devices' ingest keeps no log table: accepted readings pass through a Redis stream whose entries
are deleted once flushed to InfluxDB (devices/ingest/queue.py), and the readings themselves age
out of InfluxDB by the hosted databases' retention policy (``HOSTED_RETENTION``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from billing.retention import STRIPE_EVENTS
from shared.pruning import Report, Rule, Target, count, prune

NOTIFICATIONS = Rule(
    name="notifications",
    table="monitors_notification",
    where=(
        "t.created_at < %(cutoff)s AND t.status IN ('sent', 'failed', 'withheld')"
        " AND (t.sent_at IS NULL OR t.sent_at < %(cutoff)s)"
        " AND (t.retry_until IS NULL OR t.retry_until < %(cutoff)s)"
        " AND NOT EXISTS (SELECT 1 FROM monitors_incident AS i"
        "  WHERE i.id = t.incident_id AND i.resolved_at IS NULL)"
    ),
    order_by="created_at",
    dependents=(("monitors_deliveryattempt", "notification_id"),),
)
INCIDENTS = Rule(
    name="incidents",
    table="monitors_incident",
    where=(
        "t.resolved_at IS NOT NULL AND t.resolved_at < %(cutoff)s"
        " AND NOT EXISTS (SELECT 1 FROM monitors_notification AS n WHERE n.incident_id = t.id)"
        " AND EXISTS (SELECT 1 FROM monitors_incident AS later"
        "  WHERE later.monitor_id = t.monitor_id AND later.opened_at > t.opened_at)"
    ),
    order_by="resolved_at",
)
SESSIONS = Rule(  # what Django's clearsessions deletes, in batches
    name="expired_sessions",
    table="django_session",
    where="t.expire_date < %(cutoff)s",
    order_by="expire_date",
    key="session_key",
)
ADMIN_LOG = Rule(
    name="admin_log",
    table="django_admin_log",
    where="t.action_time < %(cutoff)s",
    order_by="id",
)
# A fleet monitor's series that stopped reporting long ago: its row was last written when its
# data went (last_value NULL; a series with data is rewritten at least every
# FLEET_VALUE_REFRESH_SECONDS). Never one that is firing or failing, or has an open incident;
# one that comes back joins again as a new series.
GONE_SERIES = Rule(
    name="gone_series",
    table="monitors_seriesstate",
    where=(
        "t.last_value IS NULL AND t.last_evaluated_at < %(cutoff)s"
        " AND t.status NOT IN ('firing', 'error')"
        " AND NOT EXISTS (SELECT 1 FROM monitors_incident AS i"
        "  WHERE i.monitor_id = t.monitor_id AND i.series_key = t.key"
        "  AND i.resolved_at IS NULL)"
    ),
    order_by="last_evaluated_at",
)
RULES = (NOTIFICATIONS, INCIDENTS, STRIPE_EVENTS, SESSIONS, ADMIN_LOG, GONE_SERIES)
NAMES = tuple(rule.name for rule in RULES)


def _age(days: float) -> timedelta | None:
    return timedelta(days=days) if days > 0 else None


def ages() -> dict[str, timedelta | None]:
    """Each rule's age from settings (None: kept for ever). Sessions go once expired."""
    return {
        NOTIFICATIONS.name: _age(settings.RETENTION_NOTIFICATIONS_DAYS),
        INCIDENTS.name: _age(settings.RETENTION_INCIDENTS_DAYS),
        STRIPE_EVENTS.name: _age(settings.RETENTION_STRIPE_EVENTS_DAYS),
        SESSIONS.name: timedelta(0),
        ADMIN_LOG.name: _age(settings.RETENTION_ADMIN_LOG_DAYS),
        GONE_SERIES.name: _age(settings.RETENTION_GONE_SERIES_DAYS),
    }


def targets(*, now: datetime, only: set[str] | None = None) -> list[Target]:
    """The rules in the order they run (notifications before the incidents they point at)."""
    found = ages()
    return [
        Target(rule, _cutoff(now, found[rule.name]))
        for rule in RULES
        if only is None or rule.name in only
    ]


def _cutoff(now: datetime, age: timedelta | None) -> datetime | None:
    return None if age is None else now - age


def run(
    *,
    now: datetime | None = None,
    batch: int | None = None,
    budget_seconds: float | None = None,
    only: set[str] | None = None,
) -> Report:
    """Deletes what is old, batch by batch, within the time budget (settings by default)."""
    now = now or timezone.now()
    return prune(
        targets(now=now, only=only),
        now=now,
        batch=batch or settings.RETENTION_BATCH_SIZE,
        budget_seconds=(
            settings.RETENTION_TIME_BUDGET_SECONDS if budget_seconds is None else budget_seconds
        ),
        pause_seconds=settings.RETENTION_PAUSE_SECONDS,
    )


def dry_run(*, now: datetime | None = None, only: set[str] | None = None) -> dict[str, int]:
    """What :func:`run` would delete now, by rule."""
    now = now or timezone.now()
    return count(targets(now=now, only=only), now=now)
