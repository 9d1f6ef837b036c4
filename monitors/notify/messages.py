"""Words for a notification: the subject, a plain-text body and the facts as a list, built from
the payload so every channel explains the alert the same way."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

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
}
MAX_CHANGES_SHOWN = 50  # series listed in a storm's text (the webhook payload has them all)


def subject(payload: dict[str, Any]) -> str:
    title = TITLES.get(payload.get("event", ""), str(payload.get("event", "")).upper())
    name = payload.get("monitor", {}).get("name", "growalert")
    series = (payload.get("series") or {}).get("label")
    return f"[{title}] {name}" + (f" — {series}" if series else "")


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return str(timedelta(seconds=round(seconds)))


def facts(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs worth showing, in order."""
    rows: list[tuple[str, str]] = [("What", payload.get("reason") or "")]
    if payload.get("series"):
        tags = payload["series"].get("tags") or {}
        rows.append(("Series", ", ".join(f"{k}={v}" for k, v in tags.items())))
    if payload.get("changes"):
        rows.append(("Series", changes_text(payload)))
    if payload.get("value") is not None:
        rows.append(("Value", f"{payload['value']:g}"))
    if payload.get("threshold") is not None:
        rows.append(("Threshold", f"{payload.get('comparator', '')} {payload['threshold']:g}"))
    if payload.get("window_seconds"):
        window = duration_text(payload["window_seconds"])
        rows.append(("Window", f"{payload.get('aggregation', '')} over {window}"))
    incident = payload.get("incident") or {}
    if incident.get("opened_at"):
        rows.append(("Started", _when(incident["opened_at"])))
    if incident.get("duration_seconds") is not None:
        rows.append(("Lasted", duration_text(incident["duration_seconds"])))
    if payload.get("status"):
        rows.append(("Status", f"{payload.get('previous_status', '?')} → {payload['status']}"))
    if payload.get("query"):
        rows.append(("Query", payload["query"]))
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


def points_text(payload: dict[str, Any], limit: int = 10) -> list[str]:
    points = payload.get("points") or []
    return [f"{_when(t)}  {'no value' if v is None else f'{v:g}'}" for t, v in points[-limit:]]


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except ValueError:
        return iso
