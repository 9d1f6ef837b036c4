"""The notification payload, version 1 (documented in docs/notifications.md): one typed shape
that every notification is built as, whether the pipeline writes it for a monitor's event or
it concerns no monitor (a channel's test, another channel that keeps failing). Stored as JSON
in the outbox row (``Notification.payload``) and sent as is."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

VERSION = 1
MAX_LISTED = 1000  # series listed in one storm notification


class MonitorRef(TypedDict):
    id: int | None  # None: a notification about no monitor
    name: str
    url: str


class ChannelRef(TypedDict):
    id: int
    name: str
    kind: str


class IncidentRef(TypedDict):
    id: int
    opened_at: str
    resolved_at: str | None
    duration_seconds: float | None


class SeriesRef(TypedDict):
    """One series of a fleet monitor: its key, its tags and its name as people read it."""

    key: str
    label: str
    tags: dict[str, str]


class SeriesChange(TypedDict):
    """One series' change in a storm (many series changing in one evaluation)."""

    series: SeriesRef
    event: str
    status: str
    previous_status: str
    value: float | None
    reason: str
    incident_id: int | None


@dataclass(frozen=True, slots=True)
class Payload:
    event: str  # a monitors.vocabulary.NotificationEvent value
    occurred_at: datetime
    monitor: MonitorRef
    reason: str
    status: str | None = None
    previous_status: str | None = None
    channel: ChannelRef | None = None  # which channel it is about (channel_failing)
    value: float | None = None
    threshold: float | None = None
    comparator: str | None = None
    aggregation: str | None = None
    window_seconds: float | None = None
    query: str | None = None
    incident: IncidentRef | None = None
    points: list[list[Any]] = field(default_factory=list)
    series: SeriesRef | None = None  # a fleet monitor's series
    changes: list[SeriesChange] | None = None  # a storm: every series that changed
    changes_total: int | None = None  # how many changed (``changes`` lists at most MAX_LISTED)
    # Added to version 1 (optional; absent in older rows): how values are shown, which
    # threshold was crossed, the series' tags, and when the failing began.
    unit: str = ""
    precision: int | None = None
    threshold_kind: str | None = None  # "critical" or "warning": which one ``threshold`` is
    threshold_high: float | None = None  # the upper bound of a range (outside / inside)
    tags: dict[str, str] = field(default_factory=dict)
    failing_since: datetime | None = None
    # the owner's IANA time zone ("Europe/Amsterdam"): messages show their times in it; absent
    # in older rows, which are shown in UTC (monitors/notify/local_time.py)
    time_zone: str = "UTC"

    def as_json(self) -> dict[str, Any]:
        """The stored and sent form (``channel`` only when there is one, after ``monitor``)."""
        about: dict[str, Any] = {
            "version": VERSION,
            "event": self.event,
            "occurred_at": self.occurred_at.isoformat(),
            "monitor": dict(self.monitor),
        }
        if self.channel is not None:
            about["channel"] = dict(self.channel)
        if self.series is not None:
            about["series"] = dict(self.series)
        if self.changes is not None:
            about["changes"] = [dict(change) for change in self.changes]
            about["changes_total"] = self.changes_total
        return about | {
            "status": self.status,
            "previous_status": self.previous_status,
            "reason": self.reason,
            "value": self.value,
            "threshold": self.threshold,
            "comparator": self.comparator,
            "aggregation": self.aggregation,
            "window_seconds": self.window_seconds,
            "query": self.query,
            "incident": None if self.incident is None else dict(self.incident),
            "points": self.points,
            "unit": self.unit,
            "precision": self.precision,
            "threshold_kind": self.threshold_kind,
            "threshold_high": self.threshold_high,
            "tags": dict(self.tags),
            "failing_since": None if self.failing_since is None else self.failing_since.isoformat(),
            "time_zone": self.time_zone,
        }
