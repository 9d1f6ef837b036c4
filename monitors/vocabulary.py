"""One vocabulary: alerts_core's enums are the values (statuses, data policies, event kinds,
aggregations, comparators); this module adds the words people read, once. The model choices,
the API schema's enums, the pages and the notifications take both from here, and
tests/monitors/test_vocabulary.py checks that every value has its words.

Adding a comparator: its member in ``alerts_core.Comparator``, its label below, and its logic
(``monitors/evaluate/thresholds.py``; for a range, ``Comparator.is_range``). Changing a label or
the order of a choice list is a no-op state migration for Django (the stored values stay)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from alerts_core import Aggregation, Comparator, DataPolicy, EventKind, Status

E = TypeVar("E", bound=enum.StrEnum)


class NotificationEvent(enum.StrEnum):
    """What a notification is about: every event of the state machine (same values as
    ``alerts_core.EventKind``), and two that concern no monitor's state."""

    FIRED = EventKind.FIRED.value
    RESOLVED = EventKind.RESOLVED.value
    REPEATED = EventKind.REPEATED.value
    WARNING_RAISED = EventKind.WARNING_RAISED.value
    WARNING_CLEARED = EventKind.WARNING_CLEARED.value
    FLAPPING_STARTED = EventKind.FLAPPING_STARTED.value
    FLAPPING_STOPPED = EventKind.FLAPPING_STOPPED.value
    PAUSED = EventKind.PAUSED.value
    REDEFINED = EventKind.REDEFINED.value
    TEST = "test"  #: a channel's test message
    CHANNEL_FAILING = "channel_failing"  #: another of the owner's channels keeps failing
    #: many series of a fleet monitor changed in one evaluation: one message lists them
    SERIES_CHANGED = "series_changed"
    #: an incident stayed unacknowledged: a step of its escalation policy
    ESCALATED = "escalated"


#: most urgent first: dashboards, lists, a fleet monitor's grid, and its own status (its worst
#: series')
STATUS_ORDER = (
    Status.FIRING,
    Status.ERROR,
    Status.NO_DATA,
    Status.WARNING,
    Status.PENDING,
    Status.OK,
    Status.PAUSED,
)

STATUS_LABELS: Mapping[Status, str] = {
    Status.OK: "OK",
    Status.PENDING: "Pending",
    Status.FIRING: "Firing",
    Status.WARNING: "Warning",
    Status.NO_DATA: "No data",
    Status.ERROR: "Error",
    Status.PAUSED: "Paused",
}

DATA_POLICY_LABELS: Mapping[DataPolicy, str] = {
    DataPolicy.ALERTING: "Notify (treat as failing)",
    DataPolicy.OK: "Treat as OK",
    DataPolicy.KEEP_LAST: "Keep the last state",
    DataPolicy.STATUS: "Show as a status only (notify nobody)",
}

AGGREGATION_LABELS: Mapping[Aggregation, str] = {
    Aggregation.MEAN: "Mean",
    Aggregation.MIN: "Minimum",
    Aggregation.MAX: "Maximum",
    Aggregation.LAST: "Last value",
    Aggregation.COUNT: "Count",
    Aggregation.SUM: "Sum",
    Aggregation.MEDIAN: "Median",
    Aggregation.PERCENTILE: "Percentile",
    Aggregation.CHANGE: "Change (last minus first)",
}

COMPARATOR_LABELS: Mapping[Comparator, str] = {
    Comparator.ABOVE: "Above",
    Comparator.BELOW: "Below",
    Comparator.OUTSIDE: "Outside a range",
    Comparator.INSIDE: "Inside a range",
}

EVENT_LABELS: Mapping[NotificationEvent, str] = {
    NotificationEvent.FIRED: "Fired",
    NotificationEvent.RESOLVED: "Resolved",
    NotificationEvent.REPEATED: "Still firing",
    NotificationEvent.WARNING_RAISED: "Warning",
    NotificationEvent.WARNING_CLEARED: "Warning cleared",
    NotificationEvent.FLAPPING_STARTED: "Flapping (notifications paused)",
    NotificationEvent.FLAPPING_STOPPED: "Stopped flapping",
    NotificationEvent.PAUSED: "Stopped firing: paused",
    NotificationEvent.REDEFINED: "Stopped firing: definition changed",
    NotificationEvent.TEST: "Test notification",
    NotificationEvent.CHANNEL_FAILING: "Another channel keeps failing",
    NotificationEvent.SERIES_CHANGED: "Many series changed",
    NotificationEvent.ESCALATED: "Escalated: still unacknowledged",
}


def choices(values: type[E], labels: Mapping[E, str]) -> list[tuple[str, str]]:
    """Django's ``choices`` for a field holding ``values``: each value with its label, in the
    enum's order (a value without a label is a KeyError at import, not a blank on a page)."""
    return [(member.value, labels[member]) for member in values]


STATUS_CHOICES = choices(Status, STATUS_LABELS)
DATA_POLICY_CHOICES = choices(DataPolicy, DATA_POLICY_LABELS)
AGGREGATION_CHOICES = choices(Aggregation, AGGREGATION_LABELS)
COMPARATOR_CHOICES = choices(Comparator, COMPARATOR_LABELS)
EVENT_CHOICES = choices(NotificationEvent, EVENT_LABELS)


class AckRoute(enum.StrEnum):
    """How an incident was acknowledged."""

    LINK = "link"
    SMS = "sms"
    VOICE = "voice"
    PAGE = "page"
    API = "api"


ACK_ROUTE_LABELS: Mapping[AckRoute, str] = {
    AckRoute.LINK: "a link in a notification",
    AckRoute.SMS: "an SMS reply",
    AckRoute.VOICE: "a voice call (pressed 1)",
    AckRoute.PAGE: "the incident page",
    AckRoute.API: "the API",
}
ACK_ROUTE_CHOICES = choices(AckRoute, ACK_ROUTE_LABELS)


def status_label(status: str) -> str:
    """The words for a monitor's status (the value itself if it is not one)."""
    try:
        return STATUS_LABELS[Status(status)]
    except ValueError:
        return status
