"""Acknowledging an incident: "someone is on it". Every route (a signed link in a
notification, an SMS reply, a voice call's digit, the incident page, the API) ends in
:func:`acknowledge`, which decides it with one conditional UPDATE in one transaction: of two
people acknowledging at once one wins, and both are told who did. An acknowledged incident is
neither escalated nor repeated any more; its resolution still ends it. A resolved incident
cannot be acknowledged (:class:`AlreadyResolved`, a 409 in the API).

The links a notification carries are signed (``django.core.signing``) with one salt per
purpose, so an acknowledgement link cannot be replayed as a voice callback or anything else,
and expire (``ACK_LINK_HOURS``; a voice callback within ``VOICE_GATHER_MINUTES``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from monitors import live
from monitors.models import Escalation, Incident
from monitors.vocabulary import AckRoute
from shared.links import absolute_url

LINK_SALT = "growalert.incident-ack.link"
GATHER_SALT = "growalert.incident-ack.voice-gather"
VOICE_GATHER_MINUTES = 60
# events whose notifications carry an acknowledgement link: the incident is open and firing
ACKABLE_EVENTS = frozenset({"fired", "repeated", "escalated"})
# events that nag someone who has not answered: not sent once the incident is acknowledged or
# resolved, even if their row was written (or claimed) before that
NAGGING_EVENTS = frozenset({"repeated", "escalated"})


class AlreadyResolved(Exception):
    def __init__(self, incident: Incident) -> None:
        assert incident.resolved_at is not None
        when = timezone.localtime(incident.resolved_at).strftime("%Y-%m-%d %H:%M")
        super().__init__(
            f"incident {incident.pk} was resolved at {when}: there is nothing to acknowledge"
        )
        self.incident = incident


class BadLink(Exception):
    """A link that was forged, altered, made for another purpose, or has expired."""


@dataclass(frozen=True)
class Outcome:
    incident: Incident
    won: bool  # this call acknowledged it; False: someone had already


def acknowledge(
    incident_id: int,
    *,
    via: AckRoute,
    by: AbstractBaseUser | AnonymousUser | None = None,
    note: str = "",
    now: datetime | None = None,
) -> Outcome:
    """Acknowledges an open incident, once. Raises :class:`AlreadyResolved` for a resolved one
    and ``Incident.DoesNotExist`` for none."""
    now = now or timezone.now()
    user_id = by.pk if by is not None and by.is_authenticated else None
    with transaction.atomic():
        won = Incident.objects.filter(
            pk=incident_id, resolved_at__isnull=True, acknowledged_at__isnull=True
        ).update(
            acknowledged_at=now,
            acknowledged_by_id=user_id,
            acknowledged_via=via.value,
            acknowledged_note=note[:200],
        )
        if won:
            Escalation.objects.filter(incident_id=incident_id, finished_at__isnull=True).update(
                finished_at=now, finished_reason="acknowledged"
            )
        incident = Incident.objects.select_related("acknowledged_by", "monitor").get(pk=incident_id)
        if won:  # the pages show who acknowledged
            live.changed_on_commit([incident.monitor.owner_id], [incident.monitor_id])
    if not won and incident.acknowledged_at is None:
        raise AlreadyResolved(incident)
    return Outcome(incident, bool(won))


def withheld_reason(event: str, incident_id: int | None) -> str:
    """Why a nagging notification must not go out any more ("" if it may): read just before
    it is sent, so an acknowledgement or resolution that landed after the row was written
    still stops it. ``"not sent: acknowledged by alice via the API"``."""
    if incident_id is None or event not in NAGGING_EVENTS:
        return ""
    incident = (
        Incident.objects.select_related("acknowledged_by")
        .only(
            "resolved_at",
            "acknowledged_at",
            "acknowledged_via",
            "acknowledged_note",
            "acknowledged_by__username",
        )
        .filter(pk=incident_id)
        .first()
    )
    if incident is None:
        return ""
    if incident.resolved_at is not None:
        when = timezone.localtime(incident.resolved_at).strftime("%Y-%m-%d %H:%M")
        return f"not sent: the incident was resolved at {when}"
    if incident.acknowledged_at is not None:
        return f"not sent: acknowledged by {incident.acknowledged_by_text()}"
    return ""


# ------------------------------------------------------------------ signed links


def with_link(
    payload: dict[str, Any], *, event: str, incident_id: int | None, channel_id: int
) -> dict[str, Any]:
    """The payload as sent: a notification about a firing incident carries its one-click
    acknowledgement link (``acknowledge_url``), signed when it is sent, for this channel."""
    if incident_id is None or event not in ACKABLE_EVENTS:
        return payload
    return {**payload, "acknowledge_url": link_url(incident_id, channel_id)}


def link_token(incident_id: int, channel_id: int) -> str:
    return signing.dumps({"i": incident_id, "c": channel_id}, salt=LINK_SALT)


def link_url(incident_id: int, channel_id: int) -> str:
    """The one-click acknowledgement page for a notification to this channel."""
    return absolute_url(reverse("pages:acknowledge", args=[link_token(incident_id, channel_id)]))


def read_link(token: str) -> tuple[int, int]:
    """(incident id, channel id) of a valid, unexpired link; raises :class:`BadLink`."""
    return _read(token, LINK_SALT, settings.ACK_LINK_HOURS * 3600)


def gather_url(incident_id: int, channel_id: int) -> str:
    """Where Twilio posts the digit pressed during a voice call about this incident."""
    token = signing.dumps({"i": incident_id, "c": channel_id}, salt=GATHER_SALT)
    return absolute_url(reverse("twilio-voice-gather", args=[token]))


def read_gather(token: str) -> tuple[int, int]:
    return _read(token, GATHER_SALT, VOICE_GATHER_MINUTES * 60)


def _read(token: str, salt: str, max_age: int) -> tuple[int, int]:
    try:
        data = signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise BadLink("this link has expired") from exc
    except signing.BadSignature as exc:
        raise BadLink("this link is not valid") from exc
    try:
        return int(data["i"]), int(data["c"])
    except (TypeError, KeyError, ValueError) as exc:
        raise BadLink("this link is not valid") from exc
