"""A channel's own words: its subject and body templates, filled with the alert's variables.

A template is text with ``{name}`` placeholders (``{monitor} is {value}, {threshold}``) and
``{tags.device}`` for one of the series' tags; ``{{`` and ``}}`` are literal braces. That is all
it can do: no attribute access, no filters, no loops, so a template cannot reach anything but
the values listed in :data:`VARIABLES`, all of them already plain strings made from the stored
payload. Templates are bounded (monitors.models: 200 characters for a subject, 2,000 for a
body) and checked when saved (:func:`check`: a form or API error in plain words).

Delivery never stops on a template: :func:`render_for` falls back to the default message and
logs why if a stored template cannot be filled (it was saved before a rule changed, say).
Each channel kind escapes the values as its medium needs (Slack's ``&<>``; the HTML email
escapes the whole filled text), see the notifiers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitors import display
from monitors.models import BODY_TEMPLATE_LENGTH, SUBJECT_TEMPLATE_LENGTH, Channel
from monitors.notify import local_time, messages
from monitors.vocabulary import status_label

logger = logging.getLogger(__name__)

# name → what it holds, as the channel page and docs/notifications.md list them
VARIABLES: dict[str, str] = {
    "monitor": "the monitor's name",
    "event": "what happened, in capitals: FIRING, RESOLVED, WARNING…",
    "state": "the monitor's state now: Firing, OK, Warning…",
    "previous_state": "its state before",
    "headline": "the default first line: “Bench 3 soil is 14 %, below 20 % for 12 min”",
    "reason": "why, in the evaluator's words",
    "value": "the value with its unit: 14 %",
    "threshold": "the threshold crossed, with its comparator: below 20 %",
    "threshold_kind": "critical or warning",
    "series": "a fleet monitor's series: device=bench-3",
    "tags": "the series' tags: device=bench-3, zone=north",
    "tags.NAME": "one tag's value, e.g. {tags.device}",
    "since": "when the trouble began, in the account's time zone: 2026-12-02 02:15 CET",
    "for": "how long it has lasted: 12 min",
    "time": "when this happened, in the account's time zone",
    "window": "the evaluated window: mean over 5 min",
    "link": "the monitor's page",
}
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
TAG_NAME = re.compile(r"^tags\.([A-Za-z0-9_.:/-]{1,100})$")


class TemplateError(ValueError):
    """A template that cannot be used, said in plain words."""


@dataclass(frozen=True)
class Rendered:
    subject: str | None  # None: the default subject
    body: str | None  # None: the default message


def _names() -> str:
    return ", ".join(f"{{{name}}}" for name in VARIABLES if name != "tags.NAME")


def check(template: str, *, limit: int = BODY_TEMPLATE_LENGTH) -> None:
    """Raises :class:`TemplateError` naming the first problem: too long, a lone brace or an
    unknown variable."""
    if len(template) > limit:
        raise TemplateError(f"At most {limit} characters (this one has {len(template)}).")
    _check_placeholders(template)


def _check_placeholders(template: str) -> None:
    for match in PLACEHOLDER.finditer(template):
        token, name = match.group(0), match.group(1)
        if token in ("{", "}"):
            raise TemplateError(
                f"A lone “{token}” at character {match.start() + 1}: write a variable as "
                "{monitor}, or a brace itself as {{ or }}."
            )
        if name is not None and name.strip() not in VARIABLES and not TAG_NAME.match(name.strip()):
            raise TemplateError(f"{{{name}}} is not a variable. The variables are: {_names()}.")


def fill(template: str, values: dict[str, str], escape: Callable[[str], str] = str) -> str:
    """The template with each placeholder replaced by its escaped value; a tag the series does
    not have is empty. Raises :class:`TemplateError` on what :func:`check` refuses."""
    _check_placeholders(template)

    def one(match: re.Match[str]) -> str:
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            return token[0]
        key = (name or "").strip()
        tag = TAG_NAME.match(key)
        if tag:
            return escape(values.get(f"tags.{tag.group(1)}", ""))
        return escape(values[key])

    return PLACEHOLDER.sub(one, template)


def variables(payload: dict[str, Any]) -> dict[str, str]:
    """Every variable's value for this payload, as plain strings."""
    monitor = payload.get("monitor") or {}
    tags = {**((payload.get("series") or {}).get("tags") or {}), **(payload.get("tags") or {})}
    since = _moment(payload.get("failing_since"))
    occurred = _moment(payload.get("occurred_at"))
    lasted = ""
    if since is not None and occurred is not None and occurred > since:
        lasted = display.duration(occurred - since)
    window = ""
    if payload.get("window_seconds"):
        window = (
            f"{payload.get('aggregation') or ''} over {display.duration(payload['window_seconds'])}"
        )
    values = {
        "monitor": str(monitor.get("name") or "growalert"),
        "event": messages.TITLES.get(
            payload.get("event", ""), str(payload.get("event", "")).upper()
        ),
        "state": _state(payload.get("status")),
        "previous_state": _state(payload.get("previous_status")),
        "headline": messages.headline(payload),
        "reason": str(payload.get("reason") or ""),
        "value": "" if payload.get("value") is None else messages.shown(payload, payload["value"]),
        "threshold": messages.threshold_text(payload),
        "threshold_kind": str(payload.get("threshold_kind") or ""),
        "series": str((payload.get("series") or {}).get("label") or ""),
        "tags": ", ".join(f"{k}={v}" for k, v in tags.items()),
        "since": _clock(since, payload),
        "for": lasted,
        "time": _clock(occurred, payload),
        "window": window.strip(),
        "link": str(monitor.get("url") or ""),
    }
    values.update({f"tags.{k}": str(v) for k, v in tags.items()})
    return values


def render_for(
    channel: Channel, payload: dict[str, Any], escape: Callable[[str], str] = str
) -> Rendered:
    """The channel's subject and body for this payload; None for each that has no template or
    cannot be filled (logged: the default message goes out instead)."""
    if not channel.subject_template and not channel.body_template:
        return Rendered(None, None)
    values = variables(payload)
    return Rendered(
        _safely(
            channel, "subject", channel.subject_template, values, escape, SUBJECT_TEMPLATE_LENGTH
        ),
        _safely(channel, "body", channel.body_template, values, escape, BODY_TEMPLATE_LENGTH),
    )


def _safely(
    channel: Channel,
    which: str,
    template: str,
    values: dict[str, str],
    escape: Callable[[str], str],
    limit: int,
) -> str | None:
    if not template:
        return None
    try:
        check(template, limit=limit)
        text = fill(template, values, escape)
    except (TemplateError, KeyError) as exc:
        logger.warning(
            "Channel %s: its %s template cannot be used (%s); the default message is sent",
            channel.pk,
            which,
            exc,
        )
        return None
    # values can be long (a reason, many tags): the filled text stays bounded too
    return text[: limit * 4]


def _state(status: Any) -> str:
    if not status:
        return ""
    try:
        return status_label(str(status))
    except (KeyError, ValueError):
        return str(status)


_moment = local_time.moment


def _clock(moment: datetime | None, payload: dict[str, Any]) -> str:
    return "" if moment is None else local_time.clock(moment, payload)


def sample_payload(site_url: str, *, time_zone: str = "UTC") -> dict[str, Any]:
    """An alert as growalert writes one, to preview templates with when the account has no
    alert of its own yet; its times shown in ``time_zone`` (the owner's, as the pipeline writes
    into real alerts: monitors/evaluate/time_zones.py)."""
    return {
        "version": 1,
        "event": "fired",
        "occurred_at": "2026-12-02T01:27:00+00:00",
        "monitor": {"id": 0, "name": "Bench 3 soil", "url": f"{site_url}/app/"},
        "status": "firing",
        "previous_status": "pending",
        "reason": "mean(moisture) = 14 is below the critical threshold 20",
        "value": 14.0,
        "threshold": 20.0,
        "comparator": "below",
        "aggregation": "mean",
        "window_seconds": 600,
        "incident": None,
        "points": [],
        "unit": "%",
        "precision": 0,
        "threshold_kind": "critical",
        "threshold_high": None,
        "tags": {"device": "bench-3"},
        "failing_since": "2026-12-02T01:15:00+00:00",
        "time_zone": time_zone,
    }
