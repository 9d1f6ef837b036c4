"""An incident's timeline, oldest first: it fired; each notification (escalation steps
among them) with its delivery attempts; silences over it; its acknowledgement (who, how); its
resolution. Read from the rows that already record them (the incident, the outbox and its
delivery log, silences, the escalation row), so it is the same on the page and in the API
(``GET /incidents/<id>/timeline``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from monitors.models import Escalation, Incident, Notification, Silence
from monitors.vocabulary import EVENT_LABELS, NotificationEvent

MAX_NOTIFICATIONS = 500  # listed per incident (a long nag lists its latest)


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # fired | notification | escalation | silenced | acknowledged | resolved | ...
    text: str
    channel: str = ""
    delivery: str = ""  # the notification's delivery status
    attempts: list[dict[str, Any]] = field(default_factory=list)


def incident_timeline(incident: Incident) -> list[Entry]:
    entries = [Entry(incident.opened_at, "fired", f"Fired: {incident.summary}".strip().rstrip(":"))]
    entries += _notifications(incident)
    entries += _silences(incident)
    if incident.acknowledged_at is not None:
        who = incident.acknowledged_by_text()
        entries.append(Entry(incident.acknowledged_at, "acknowledged", f"Acknowledged by {who}"))
    entries += _escalation_end(incident)
    if incident.resolved_at is not None:
        entries.append(Entry(incident.resolved_at, "resolved", "Resolved"))
    return sorted(entries, key=lambda e: e.at)


def _notifications(incident: Incident) -> list[Entry]:
    rows = (
        Notification.objects.filter(incident=incident)
        .select_related("channel")
        .prefetch_related("delivery_attempts")
        .order_by("-created_at")[:MAX_NOTIFICATIONS]
    )
    return [_notification_entry(n) for n in rows]


def _notification_entry(n: Notification) -> Entry:
    escalated = n.event == NotificationEvent.ESCALATED
    what = EVENT_LABELS.get(NotificationEvent(n.event), n.event) if n.event else ""
    if escalated:
        step = (n.payload or {}).get("escalation") or {}
        repeat = f", repeat {step['repeat']}" if step.get("repeat") else ""
        what = f"Escalated: step {step.get('step', '?')} of {step.get('policy', '?')}{repeat}"
    return Entry(
        at=n.created_at,
        kind="escalation" if escalated else "notification",
        text=f"{what} → {n.channel.name} ({n.channel.get_kind_display()})",
        channel=n.channel.name,
        delivery=(
            n.last_error[:1].upper() + n.last_error[1:]
            if n.status == Notification.DeliveryStatus.WITHHELD
            else n.get_status_display()
        ),
        attempts=[
            {
                "number": a.number,
                "outcome": a.get_outcome_display(),
                "at": a.started_at,
                "error": a.error,
            }
            for a in n.delivery_attempts.all()
        ],
    )


def _silences(incident: Incident) -> list[Entry]:
    end = incident.resolved_at or timezone.now()
    owner_id = incident.monitor.owner_id
    covering = (
        Silence.objects.filter(owner_id=owner_id, starts_at__lte=end)
        .filter(Q(monitor__isnull=True) | Q(monitor_id=incident.monitor_id))
        .filter(Q(ends_at__gt=incident.opened_at) | Q(daily=True))
        .filter(Q(series_key="") | Q(series_key=incident.series_key))
    )
    entries = []
    for s in covering[:50]:
        local_end = timezone.localtime(s.ends_at).strftime("%Y-%m-%d %H:%M")
        every = "daily window, " if s.daily else ""
        why = f": {s.reason}" if s.reason else ""
        at = max(s.starts_at, incident.opened_at)
        entries.append(Entry(at, "silenced", f"Silenced ({every}until {local_end}){why}"))
    return entries


def _escalation_end(incident: Incident) -> list[Entry]:
    row = Escalation.objects.filter(incident=incident, finished_at__isnull=False).first()
    if row is None or row.finished_reason in ("acknowledged", "resolved"):
        return []  # told by their own entries
    assert row.finished_at is not None
    return [
        Entry(row.finished_at, "escalation_finished", f"Escalation ended: {row.finished_reason}")
    ]
