"""Delivering one outbox row: claim it, send it, record the attempt, decide what comes next.

Exactly once from the receiver's point of view:

* **Claim before send.** A single conditional UPDATE moves the row from ``pending`` (due) to
  ``sending`` with a lease; a second task for the same row finds nothing to claim and stops.
* **Sent marker.** After the medium accepts the message, the row becomes ``sent`` in the same
  transaction that records the attempt; nothing sends a ``sent`` row again.
* **The one window.** If a worker dies after the medium accepted but before that commit, the
  lease expires and the row is sent again. Webhook receivers de-duplicate with the stable
  ``Growalert-Idempotency-Key``; email carries it as ``Message-ID``; SMS and Slack have no such
  key, so a crash in that window (milliseconds) can repeat one message. Documented in
  docs/notifications.md.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F, Model, Q
from django.utils import timezone

from growalert.links import absolute_url
from monitors.models import Channel, DeliveryAttempt, Notification
from monitors.notify import breaker
from monitors.notify.base import PermanentError, Sent, TransientError
from monitors.notify.kinds import notifier_for
from monitors.notify.twilio import OptedOut
from monitors.raw_rows import Fields, loaded, select_list

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
Status = Notification.DeliveryStatus
M = TypeVar("M", bound=Model)


def backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` + 1: exponential with jitter (half fixed, half
    random), capped."""
    base: float = settings.NOTIFY_RETRY_BASE_SECONDS * 2.0 ** max(0, attempt - 1)
    capped = min(base, float(settings.NOTIFY_RETRY_MAX_SECONDS))
    return capped / 2 + random.uniform(0, capped / 2)


def deliverable_q() -> Q:
    now = timezone.now()
    return Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Status.SENDING, claimed_until__lt=now
    )


_NOTIFICATION_FIELDS = tuple(Notification._meta.concrete_fields)
_CHANNEL_FIELDS = tuple(Channel._meta.concrete_fields)


# The claim in one round trip: the conditional UPDATE (the same condition as deliverable_q)
# returns the row, joined with its channel. Two ORM statements cost twice the round trips and
# ~1 ms of query compilation, a third of a whole delivery. Only the model's own table and column
# names and status constants are formatted in; every value is a bound parameter.
CLAIM_SQL = f"""
WITH claimed AS (
    UPDATE {Notification._meta.db_table}
    SET status = '{Status.SENDING}', claimed_until = %(until)s, attempts = attempts + 1
    WHERE id = %(id)s AND (
        (status = '{Status.PENDING}' AND next_attempt_at <= %(now)s)
        OR (status = '{Status.SENDING}' AND claimed_until < %(now)s)
    )
    RETURNING *
)
SELECT {select_list("n", _NOTIFICATION_FIELDS)}, {select_list("c", _CHANNEL_FIELDS)}
FROM claimed n JOIN {Channel._meta.db_table} c ON c.id = n.channel_id
"""  # noqa: S608


def _from_row(model: type[M], fields: Fields, values: Sequence[Any]) -> M:
    """A model instance from raw column values, with the fields' own conversions (JSON)."""
    names = [field.attname for field in fields]
    return model.from_db(connection.alias, names, loaded(fields, values))


def claim(notification_id: uuid.UUID | str) -> Notification | None:
    """Takes the row for this worker (one statement); None if it is not due or someone has it.
    The notification comes back with its channel loaded."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, {"id": notification_id, "now": now, "until": now + LEASE})
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(_NOTIFICATION_FIELDS)
    notification = _from_row(Notification, _NOTIFICATION_FIELDS, row[:split])
    notification.channel = _from_row(Channel, _CHANNEL_FIELDS, row[split:])
    return notification


def deliver(notification_id: uuid.UUID | str) -> str:
    """Claims, sends and records one notification. Returns what happened: ``sent``,
    ``retry``, ``failed``, ``deferred`` (the receiver is busy or its circuit open: not tried,
    not counted) or ``skipped`` (not due, or already claimed or sent)."""
    notification = claim(notification_id)
    if notification is None:
        return "skipped"
    channel = notification.channel
    started = timezone.now()
    clock = time.perf_counter()
    sent: Sent | None = None
    error: Exception | None = None
    if not channel.enabled and notification.event != Notification.Event.TEST:
        error = PermanentError(f"channel disabled: {channel.disabled_reason or 'by its owner'}")
    else:
        try:
            sent = breaker.send(  # per-receiver concurrency limit and circuit breaker
                channel,
                lambda: notifier_for(channel).send(
                    channel, notification.payload, idempotency_key=notification.idempotency_key
                ),
            )
        except breaker.Deferred as deferred:  # not tried: not an attempt (breaker.defer)
            return breaker.defer(notification, deferred)
        except (TransientError, PermanentError) as exc:
            error = exc
        except Exception as exc:  # a bug or an unexpected library error: retry, and log it
            logger.exception("delivering notification %s failed unexpectedly", notification.pk)
            error = TransientError(f"{type(exc).__name__}: {exc}")
    duration_ms = (time.perf_counter() - clock) * 1000
    return _record(notification, sent, error, started=started, duration_ms=duration_ms)


def _record(
    notification: Notification,
    sent: Sent | None,
    error: Exception | None,
    *,
    started: datetime,
    duration_ms: float,
) -> str:
    now = timezone.now()
    code = sent.status_code if sent else getattr(error, "status_code", None)
    permanent = isinstance(error, PermanentError)
    last_attempt = notification.attempts >= settings.NOTIFY_MAX_ATTEMPTS
    if sent:
        _record_sent(notification, code, started=started, duration_ms=duration_ms, now=now)
        return "sent"
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            notification=notification,
            number=notification.attempts,
            outcome=(
                DeliveryAttempt.Outcome.PERMANENT
                if permanent
                else DeliveryAttempt.Outcome.TRANSIENT
            ),
            status_code=code,
            error=str(error)[:500] if error else "",
            started_at=started,
            duration_ms=duration_ms,
        )
        rows = Notification.objects.filter(pk=notification.pk)
        # Our lease: if it ran out and another worker claimed the row, its outcome wins.
        ours = rows.filter(status=Status.SENDING, claimed_until=notification.claimed_until)
        if permanent or last_attempt:
            if not ours.update(
                status=Status.FAILED, claimed_until=None, last_error=str(error)[:500]
            ):
                return _lost_lease(notification)
            if permanent and notification.event != Notification.Event.TEST:
                _count_permanent_failure(notification.channel, error)
            return "failed"
        delay = backoff(notification.attempts)
        if not ours.update(
            status=Status.PENDING,
            claimed_until=None,
            next_attempt_at=now + timedelta(seconds=delay),
            last_error=str(error)[:500],
        ):
            return _lost_lease(notification)
    _retry_later(notification.pk, delay)
    return "retry"


# The hot path in one statement (one round trip, atomic on its own): the attempt, the sent
# marker (whoever holds the row now: the message is out) and the channel's failure streak reset.
# Data-modifying CTEs run to completion whether or not the outer query reads them.
RECORD_SENT_SQL = """
WITH attempt AS (
    INSERT INTO monitors_deliveryattempt
        (notification_id, number, outcome, status_code, error, started_at, duration_ms)
    VALUES (%(id)s, %(number)s, 'sent', %(code)s, '', %(started)s, %(duration_ms)s)
), marked AS (
    UPDATE monitors_notification
    SET status = 'sent', sent_at = %(now)s, claimed_until = NULL, last_error = ''
    WHERE id = %(id)s AND status NOT IN ('sent', 'failed')
), streak AS (
    UPDATE monitors_channel SET consecutive_permanent_failures = 0
    WHERE id = %(channel_id)s AND consecutive_permanent_failures > 0
)
SELECT 1
"""


def _record_sent(
    notification: Notification,
    code: int | None,
    *,
    started: datetime,
    duration_ms: float,
    now: datetime,
) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            RECORD_SENT_SQL,
            {
                "id": notification.pk,
                "number": notification.attempts,
                "code": code,
                "started": started,
                "duration_ms": duration_ms,
                "now": now,
                "channel_id": notification.channel_id,
            },
        )


def _lost_lease(notification: Notification) -> str:
    logger.warning("notification %s: lease expired during the attempt", notification.pk)
    return "skipped"


def _retry_later(notification_id: uuid.UUID, delay: float) -> None:
    from monitors.notify.tasks import deliver_notification

    transaction.on_commit(
        lambda: deliver_notification.apply_async(args=(str(notification_id),), countdown=delay)
    )


def _count_permanent_failure(channel: Channel, error: Exception | None) -> None:
    """After NOTIFY_DISABLE_AFTER consecutive permanent failures the channel is disabled and
    its owner told by email. A STOP reply disables an SMS channel at once."""
    opted_out = isinstance(error, OptedOut)
    Channel.objects.filter(pk=channel.pk).update(
        consecutive_permanent_failures=F("consecutive_permanent_failures") + 1
    )
    channel.refresh_from_db()
    if not channel.enabled:
        return
    if opted_out:
        reason = "the recipient replied STOP"
        Channel.objects.filter(pk=channel.pk).update(opted_out_at=timezone.now())
    elif channel.consecutive_permanent_failures >= settings.NOTIFY_DISABLE_AFTER:
        reason = f"{channel.consecutive_permanent_failures} deliveries in a row failed: {error}"
    else:
        return
    Channel.objects.filter(pk=channel.pk).update(enabled=False, disabled_reason=reason[:300])
    owner = channel.owner
    if owner.email:
        transaction.on_commit(lambda: _tell_owner(owner.email, channel.name, reason))


def _tell_owner(email: str, channel_name: str, reason: str) -> None:
    try:
        send_mail(
            subject=f"[growalert] Channel “{channel_name}” was disabled",
            message=(
                f"We stopped sending to your channel “{channel_name}”: {reason}.\n\n"
                "Fix the destination, then enable the channel again from your channels page "
                f"({absolute_url('/app/channels')}).\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[email],
        )
    except Exception:
        logger.exception("could not tell %s that a channel was disabled", email)
