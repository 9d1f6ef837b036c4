"""What the API and the pages call: retry dead letters, send a test, verify a phone number,
handle STOP/START and ACK replies."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from monitors.models import Channel, Incident, Notification
from monitors.notify import acknowledge, delivery, queue, selectors, twilio, voice
from monitors.notify.base import DeliveryError
from monitors.notify.payload import Payload
from monitors.vocabulary import AckRoute

CODE_TTL = timedelta(minutes=10)
CODE_ATTEMPTS = 5
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "UNSTOP", "YES"}


RETRY_BATCH = 1000  # dead letters re-queued per request


class VerificationError(Exception):
    pass


class RetryError(Exception):
    """Dead letters cannot be retried now (the channel is disabled or unverified)."""


def retry_dead_letters(
    channel: Channel, *, notification_ids: Sequence[uuid.UUID] | None = None
) -> tuple[int, int]:
    """Sends the channel's dead letters (all, or those named) again, oldest first, at most
    RETRY_BATCH per call, each with its own idempotency key and a new retry budget. Returns
    (queued, the channel's dead letters left)."""
    if not channel.enabled:
        raise RetryError("the channel is disabled; enable it again first")
    if not channel.verified:
        raise RetryError("the channel is not verified yet")
    now = timezone.now()
    budget = timedelta(hours=settings.NOTIFY_RETRY_FOR_HOURS)
    dead = Notification.objects.filter(selectors.DEAD, channel_id=channel.pk)
    if notification_ids is not None:
        dead = dead.filter(pk__in=notification_ids)
    with transaction.atomic():
        ids = list(
            dead.select_for_update(skip_locked=True)
            .order_by("created_at")
            .values_list("pk", flat=True)[:RETRY_BATCH]
        )
        Notification.objects.filter(pk__in=ids, status=Notification.DeliveryStatus.FAILED).update(
            status=Notification.DeliveryStatus.PENDING,
            next_attempt_at=now,
            claimed_until=None,
            retry_until=now + budget,
        )
        queue.enqueue_on_commit(ids)
    return len(ids), Notification.objects.filter(selectors.DEAD, channel_id=channel.pk).count()


def test_payload(channel: Channel) -> dict[str, Any]:
    return Payload(
        event=Notification.Event.TEST.value,
        occurred_at=timezone.now(),
        monitor={"id": None, "name": f"Test of “{channel.name}”", "url": ""},
        reason=f"This is a test from growalert: the channel “{channel.name}” works. Alerts "
        "for the monitors it is attached to arrive like this one.",
        time_zone=selectors.owner_time_zone(channel.owner_id),
    ).as_json()


def send_test(channel: Channel) -> Notification:
    """Sends a test notification now, through the same delivery path as alerts, and returns
    it with its outcome (status, last_error, delivery_attempts)."""
    notification = Notification.objects.create(
        channel=channel,
        event=Notification.Event.TEST,
        idempotency_key=f"test:c{channel.pk}:{uuid.uuid4().hex}",
        payload=test_payload(channel),
    )
    delivery.deliver(notification.pk)
    notification.refresh_from_db()
    return notification


def _code_hash(channel: Channel, code: str) -> str:
    return salted_hmac("growalert.sms-verification", f"{channel.pk}:{code}").hexdigest()


def start_verification(channel: Channel) -> None:
    """Texts a one-time code to an SMS channel's number, or reads it out in a call to a voice
    channel's."""
    if not channel.is_phone:
        raise VerificationError("only SMS and voice channels are verified by code")
    code = f"{secrets.randbelow(1_000_000):06d}"
    channel.verification_code_hash = _code_hash(channel, code)
    channel.verification_sent_at = timezone.now()
    channel.verification_attempts = 0
    channel.verified = False
    channel.save(
        update_fields=[
            "verification_code_hash",
            "verification_sent_at",
            "verification_attempts",
            "verified",
        ]
    )
    try:
        if channel.kind == Channel.Kind.VOICE:
            twilio.create_call(channel.config["phone"], voice.code_twiml(code))
        else:
            twilio.send_sms(
                channel.config["phone"],
                f"Your growalert code is {code}. It expires in 10 minutes. Reply STOP to opt out.",
            )
    except DeliveryError as exc:
        raise VerificationError(f"could not send the code: {exc}") from exc


def confirm_verification(channel: Channel, code: str) -> Channel:
    with transaction.atomic():
        channel = Channel.objects.select_for_update().get(pk=channel.pk)
        if not channel.verification_code_hash or channel.verification_sent_at is None:
            raise VerificationError("no code was sent; ask for one first")
        if timezone.now() - channel.verification_sent_at > CODE_TTL:
            raise VerificationError("the code expired; ask for a new one")
        if channel.verification_attempts >= CODE_ATTEMPTS:
            raise VerificationError("too many wrong codes; ask for a new one")
        if not constant_time_compare(
            _code_hash(channel, code.strip()), channel.verification_code_hash
        ):
            channel.verification_attempts += 1
            channel.save(update_fields=["verification_attempts"])
            raise VerificationError("wrong code")
        channel.verified = True
        channel.verification_code_hash = ""
        channel.opted_out_at = None
        channel.save(update_fields=["verified", "verification_code_hash", "opted_out_at"])
    return channel


def handle_inbound_sms(from_number: str, body: str) -> int:
    """STOP (and its synonyms) opts the number out of every channel that texts it; START opts
    back in. Returns how many channels changed."""
    word = body.strip().upper()
    channels = Channel.objects.filter(kind=Channel.Kind.SMS, config__phone=from_number)
    if word in STOP_WORDS:
        return channels.update(
            opted_out_at=timezone.now(), enabled=False, disabled_reason="the recipient replied STOP"
        )
    if word in START_WORDS:
        return channels.filter(opted_out_at__isnull=False).update(
            opted_out_at=None, enabled=True, disabled_reason=""
        )
    return 0


ACK_WORD = "ACK"


def sms_reply(from_number: str, body: str) -> str:
    """What an inbound SMS does, and the reply to text back ("" for none): STOP / START opt
    out and in; ``ACK`` acknowledges the latest open incident texted to this number, ``ACK
    4821`` (or just ``4821``) the one with that code, if it was texted to this number."""
    words = body.strip().upper().split()
    if not words:
        return ""
    if handle_inbound_sms(from_number, body):
        return ""
    if words[0] == ACK_WORD and len(words) <= 2:
        return _ack_by_sms(from_number, words[1] if len(words) == 2 else None)
    if len(words) == 1 and words[0].isdigit():
        return _ack_by_sms(from_number, words[0])
    return ""


def _ack_by_sms(from_number: str, code: str | None) -> str:
    texted = Notification.objects.filter(
        channel__kind=Channel.Kind.SMS,
        channel__config__phone=from_number,
        incident__isnull=False,
    )
    if code is not None:
        if not code.isdigit() or not texted.filter(incident_id=int(code)).exists():
            return f"No incident {code} was texted to this number."
        incident_id = int(code)
    else:
        latest = (
            texted.filter(
                incident__resolved_at__isnull=True, incident__acknowledged_at__isnull=True
            )
            .order_by("-created_at")
            .values_list("incident_id", flat=True)
            .first()
        )
        if latest is None:
            return "No open incident to acknowledge."
        incident_id = latest
    try:
        outcome = acknowledge.acknowledge(incident_id, via=AckRoute.SMS, note=from_number)
    except acknowledge.AlreadyResolved:
        return f"Incident {incident_id} is already resolved."
    return _ack_words(outcome.incident, won=outcome.won)


def _ack_words(incident: Incident, *, won: bool) -> str:
    name = incident.monitor.name
    if won:
        return f"Acknowledged: {name} (incident {incident.pk}). Escalation stopped."
    who = incident.acknowledged_by_text()
    return f"{name} (incident {incident.pk}) was already acknowledged by {who}."


def voice_digit(token: str, digits: str) -> str:
    """A digit pressed in an alert call (Twilio's ``<Gather>`` callback): 1 acknowledges.
    Returns the words to say back. Raises acknowledge.BadLink for a bad token."""
    incident_id, channel_id = acknowledge.read_gather(token)
    if digits.strip() != "1":
        return "Not acknowledged. Goodbye."
    channel = Channel.objects.filter(pk=channel_id).only("config").first()
    note = channel.config.get("phone", "") if channel else ""
    try:
        outcome = acknowledge.acknowledge(incident_id, via=AckRoute.VOICE, note=note)
    except (acknowledge.AlreadyResolved, Incident.DoesNotExist):
        return "This incident is already resolved. Goodbye."
    if outcome.won:
        return "Acknowledged. Escalation is stopped. Thank you."
    return f"Already acknowledged by {outcome.incident.acknowledged_by_text()}. Goodbye."
