"""Words for a notification: the subject, a plain-text body and the facts as a list, built from
the payload so every channel explains the alert the same way."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from monitors import display
from monitors.notify import local_time

TITLES = {
    "fired": "FIRING",
    "resolved": "RESOLVED",
    "repeated": "STILL FIRING",
    "warning_raised": "WARNING",
    "warning_cleared": "WARNING CLEARED",
    "flapping_started": "FLAPPING",
    "flapping_stopped": "STOPPED FLAPPING",
    "paused": "PAUSED",
    "redefined": "DEFINITION CHANGED",
    "test": "TEST",
    "channel_failing": "CHANNEL FAILING",
    "series_changed": "MANY SERIES",
    "escalated": "ESCALATED",
}
MAX_CHANGES_SHOWN = 50  # series listed in a storm's text (the webhook payload has them all)


def subject(payload: dict[str, Any]) -> str:
    title = TITLES.get(payload.get("event", ""), str(payload.get("event", "")).upper())
    name = payload.get("monitor", {}).get("name", "growalert")
    series = (payload.get("series") or {}).get("label")
    return f"[{title}] {name}" + (f" — {series}" if series else "")


def duration_text(seconds: float | None) -> str:
    return "" if seconds is None else display.duration(seconds)


def shown(payload: dict[str, Any], value: float | None) -> str:
    """A value as the monitor shows it: its unit and precision ("14 %")."""
    return display.quantity(value, payload.get("unit") or "", payload.get("precision"))


def threshold_text(payload: dict[str, Any]) -> str:
    """ "below 20 %" (the threshold that was crossed)."""
    if payload.get("threshold") is None:
        return ""
    limit = shown(payload, payload["threshold"])
    if payload.get("threshold_high") is not None:
        limit += f"..{shown(payload, payload['threshold_high'])}"
    return f"{payload.get('comparator') or ''} {limit}".strip()


def _failing_for(payload: dict[str, Any]) -> str:
    since = _moment(payload.get("failing_since"))
    occurred = _moment(payload.get("occurred_at"))
    if since is None or occurred is None or occurred - since < timedelta(seconds=1):
        return ""
    return f" for {display.duration(occurred - since)}"


def headline(payload: dict[str, Any]) -> str:
    """The alert in plain words, first thing in every message: "Bench 3 soil is 14 %, below
    20 % for 12 min"; the reason for events about no value or no monitor."""
    event = payload.get("event", "")
    name = payload.get("monitor", {}).get("name") or "growalert"
    value = payload.get("value")
    if event == "test" or payload.get("monitor", {}).get("id") is None:
        return payload.get("reason") or ""
    if value is None and event in ("fired", "repeated", "escalated"):
        return f"{name} has no data{_failing_for(payload)}: {payload.get('reason') or ''}".strip()
    if value is None:
        return f"{name}: {payload.get('reason') or ''}"
    now = shown(payload, value)
    kind = payload.get("threshold_kind") or "critical"
    if event in ("fired", "repeated", "escalated"):
        return f"{name} is {now}, {threshold_text(payload)}{_failing_for(payload)}"
    if event == "warning_raised":
        return f"{name} is {now}, {threshold_text(payload)} (the warning threshold)"
    if event == "resolved":
        lasted = (payload.get("incident") or {}).get("duration_seconds")
        after = f" after {duration_text(lasted)}" if lasted else ""
        return f"{name} is back to {now}: resolved{after}"
    if event == "warning_cleared":
        return f"{name} is back to {now}, inside the {kind} threshold"
    return f"{payload.get('reason') or name} (last value {now})"


def facts(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs worth showing, in order; the query is among the details
    (:func:`details`)."""
    rows: list[tuple[str, str]] = [("What", payload.get("reason") or "")]
    if payload.get("series"):
        tags = payload["series"].get("tags") or {}
        rows.append(("Series", ", ".join(f"{k}={v}" for k, v in tags.items())))
    if payload.get("changes"):
        rows.append(("Series", changes_text(payload)))
    if payload.get("value") is not None:
        rows.append(("Value", shown(payload, payload["value"])))
    if payload.get("threshold") is not None:
        kind = payload.get("threshold_kind") or "critical"
        rows.append(("Threshold", f"{threshold_text(payload)} ({kind})"))
    if payload.get("window_seconds"):
        window = duration_text(payload["window_seconds"])
        rows.append(("Window", f"{payload.get('aggregation', '')} over {window}"))
    incident = payload.get("incident") or {}
    if incident.get("opened_at"):
        rows.append(("Started", _when(incident["opened_at"], payload)))
    if incident.get("duration_seconds") is not None:
        rows.append(("Lasted", duration_text(incident["duration_seconds"])))
    if payload.get("status") and payload.get("event") != "test":
        rows.append(("Status", f"{payload.get('previous_status', '?')} → {payload['status']}"))
    for key, value in (payload.get("tags") or {}).items():
        rows.append((key, str(value)))
    return [(label, value) for label, value in rows if value]


def changes_text(payload: dict[str, Any]) -> str:
    """A storm's series, one line each: ``greenhouse-3: FIRING (31.4 is above 30 (critical))``."""
    changes = payload.get("changes") or []
    lines = [
        f"{c['series']['label']}: {TITLES.get(c['event'], c['event'].upper())} ({c['reason']})"
        for c in changes[:MAX_CHANGES_SHOWN]
    ]
    more = (payload.get("changes_total") or len(changes)) - len(lines)
    if more > 0:
        lines.append(f"… and {more} more")
    return "\n".join(lines)


def details(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """What a reader opens when they want to know how: the query."""
    return [("Query", payload["query"])] if payload.get("query") else []


def points_text(payload: dict[str, Any], limit: int = 10) -> list[str]:
    points = payload.get("points") or []
    return [
        f"{_when(t, payload)}  {'no value' if v is None else shown(payload, v)}"
        for t, v in points[-limit:]
    ]


_moment = local_time.moment


def _when(iso: str, payload: dict[str, Any]) -> str:
    """A stored time in the payload's zone, with its abbreviation: "2026-12-02 02:15:00 CET"."""
    moment = local_time.moment(iso)
    return iso if moment is None else local_time.clock(moment, payload, "%Y-%m-%d %H:%M:%S")
