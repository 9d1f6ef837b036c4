"""A monitor's status as a true and complete sentence, for the pages: "Pending: fires at 14:32
if still above 30 °C", "Recovering: 2 more good checks to resolve", "Not evaluated yet". Pure:
reads one monitor row (its stored state included) and the time; no query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

import alerts_core as ac
from monitors import display
from monitors.definition import Thresholds
from monitors.evaluate.thresholds import describe
from monitors.models import Monitor
from monitors.vocabulary import status_label

NOT_EVALUATED = "Not evaluated yet"


@dataclass(frozen=True, slots=True)
class StatusWords:
    label: str  # the badge: "Firing", "Recovering", "Not evaluated yet"
    css: str  # the badge's colour: a status value, or "unknown"
    sentence: str  # the whole truth, one line


def threshold_words(monitor: Monitor, *, warning: bool = False, now: datetime | None = None) -> str:
    """ "above 30 °C", "outside 18 °C..24 °C" (the warning threshold with ``warning``); with a
    photoperiod, the one in force ``now`` in the time zone the page is shown in (its owner's):
    "above 20 °C at night"."""
    try:
        t = monitor.thresholds_at(
            now or timezone.now(), monitor.time_zone or timezone.get_current_timezone_name()
        )
    except ValueError:  # a threshold planted past validation (NaN): shown as stored
        t = Thresholds(monitor.comparator, monitor.critical, monitor.critical_high,
                       monitor.warning, monitor.warning_high)  # fmt: skip
    low, high = (t.warning, t.warning_high) if warning else (t.critical, t.critical_high)
    if low is None:
        return ""
    words = describe(monitor.comparator, low, high, monitor.show)
    return f"{words} at night" if t.period == "night" else words


def status_words(monitor: Monitor, *, now: datetime | None = None) -> StatusWords:
    now = now or timezone.now()
    status = monitor.status
    if not monitor.enabled or status == ac.Status.PAUSED:
        return StatusWords("Paused", "paused", "Paused: not checked until it is resumed.")
    if monitor.last_evaluated_at is None:
        due = monitor.next_due_at
        when = (
            f"first check at {display.clock(due, now=now)}"
            if due
            else "waiting for its first check"
        )
        return StatusWords(NOT_EVALUATED, "unknown", f"{NOT_EVALUATED}: {when}.")
    try:
        state = monitor.alert_state()
    except (ValueError, TypeError, KeyError):
        state = ac.MonitorState()
    reason = monitor.status_reason or "no reason recorded"
    label = status_label(status)
    if status == ac.Status.PENDING:
        return StatusWords(label, status, _pending(monitor, state, now))
    if status == ac.Status.FIRING and state.alerting and state.passes > 0:
        left = max(1, monitor.recover_after - state.passes)
        return StatusWords(
            "Recovering",
            "pending",
            f"Recovering: {display.plural(left, 'more good check')} to resolve "
            f"(now {monitor.show(monitor.last_value)}; fires {threshold_words(monitor, now=now)}).",
        )
    if status == ac.Status.FIRING:
        since = state.fired_at or monitor.status_changed_at
        lasted = f" for {display.duration(now - since)}" if since else ""
        return StatusWords(label, status, f"Firing{lasted}: {reason}.")
    return StatusWords(label, status, f"{label}: {reason}.")


def _pending(monitor: Monitor, state: ac.MonitorState, now: datetime) -> str:
    left = max(1, monitor.pending_for - state.failures)
    assert monitor.last_evaluated_at is not None
    fires_at = monitor.last_evaluated_at + left * monitor.interval
    still = (
        "there is still no data"
        if monitor.last_value is None
        else f"still {threshold_words(monitor, now=now)} (now {monitor.show(monitor.last_value)})"
    )
    checks = display.plural(left, "more failing check")
    return f"Pending: fires at {display.clock(fires_at, now=now)} if {still} — {checks}."
