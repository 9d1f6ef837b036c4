"""Delivering one outbox row: claim it, send it, record the attempt, decide what comes next.

Exactly once from the receiver's point of view:

* **Claim before send.** A single conditional UPDATE moves the row from ``pending`` (due) to
  ``sending`` with a lease; a second task for the same row finds nothing to claim and stops.
* **Short, renewed lease.** The lease (``NOTIFY_LEASE_SECONDS``) is renewed from a helper
  thread while a send runs long, so a slow receiver is never sent to twice, and a killed
  worker's row is retried soon after the lease ends. The claim that takes over an expired lease
  logs the lost attempt (outcome ``unknown``), so ``attempts`` and the log agree.
* **Sent marker, recorded durably.** After the medium accepts the message, one statement marks
  the row ``sent`` and records the attempt. If the database connection breaks (a Postgres
  restart terminates it), the statement is retried on a new connection for half the lease
  before giving up: a routine restart no longer causes a second send.
* **The one window left.** If the worker itself dies after the medium accepted and before that
  commit (kill -9, power loss), or Postgres stays away longer than half the lease, the row is
  sent again after the lease expires, with the same ``Growalert-Idempotency-Key``. Measured in
  docs/notifications.md.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Model, Q
from django.utils import timezone

from monitors import metrics
from monitors.models import Channel, DeliveryAttempt, Notification
from monitors.notify import acknowledge, breaker, queue, streaks
from monitors.notify.base import PermanentError, Sent, TransientError
from monitors.notify.kinds import notifier_for
from monitors.raw_rows import Fields, loaded, select_list
from observability import context

logger = logging.getLogger(__name__)

Status = Notification.DeliveryStatus
M = TypeVar("M", bound=Model)
T = TypeVar("T")
LOST_ATTEMPT_ERROR = (
    "the worker stopped before recording the outcome (it was killed or lost the database); "
    "the notification is sent again with the same idempotency key"
)


def lease() -> timedelta:
    return timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)


def retry_deadline(notification: Notification) -> datetime:
    """Retries stop here: ``NOTIFY_RETRY_FOR_HOURS`` after the row was written (or after a
    dead letter was retried)."""
    if notification.retry_until is not None:
        return notification.retry_until
    return notification.created_at + timedelta(hours=settings.NOTIFY_RETRY_FOR_HOURS)


def deliverable_q() -> Q:
    now = timezone.now()
    return Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Status.SENDING, claimed_until__lt=now
    )


_NOTIFICATION_FIELDS = tuple(Notification._meta.concrete_fields)
_CHANNEL_FIELDS = tuple(Channel._meta.concrete_fields)
_TABLE = Notification._meta.db_table
_ATTEMPTS = DeliveryAttempt._meta.db_table


# The claim in one round trip, of one row or of a burst's: the conditional UPDATE (the same
# condition as deliverable_q) returns the rows, joined with their channels; taking over an
# expired lease also logs the attempt that never recorded its outcome. Two ORM statements cost
# twice the round trips and ~1 ms of query compilation, a third of a whole delivery. Only the
# models' own table and column names and status constants are formatted in; every value is a
# bound parameter.
CLAIM_SQL = f"""
WITH previous AS (
    SELECT id, status, claimed_until FROM {_TABLE} WHERE id = ANY(%(ids)s)
), claimed AS (
    UPDATE {_TABLE} n
    SET status = '{Status.SENDING}', claimed_until = %(until)s, attempts = n.attempts + 1
    FROM previous p
    WHERE n.id = p.id AND (
        (n.status = '{Status.PENDING}' AND n.next_attempt_at <= %(now)s)
        OR (n.status = '{Status.SENDING}' AND n.claimed_until < %(now)s)
    )
    RETURNING n.*, p.status AS was_status, p.claimed_until AS was_until
), lost AS (
    INSERT INTO {_ATTEMPTS}
        (notification_id, number, outcome, status_code, error, started_at, duration_ms)
    SELECT id, attempts - 1, '{DeliveryAttempt.Outcome.UNKNOWN}', NULL, %(lost_error)s,
           was_until - %(lease)s, NULL
    FROM claimed WHERE was_status = '{Status.SENDING}' AND attempts > 1
    ON CONFLICT (notification_id, number) DO NOTHING
)
SELECT {select_list("n", _NOTIFICATION_FIELDS)}, {select_list("c", _CHANNEL_FIELDS)}
FROM claimed n JOIN {Channel._meta.db_table} c ON c.id = n.channel_id
"""  # noqa: S608


def _from_row(model: type[M], fields: Fields, values: Sequence[Any]) -> M:
    """A model instance from raw column values, with the fields' own conversions (JSON)."""
    names = [field.attname for field in fields]
    return model.from_db(connection.alias, names, loaded(fields, values))


def _drop_connection() -> None:
    with contextlib.suppress(DatabaseError):
        connection.close()


def claim(notification_id: uuid.UUID | str) -> Notification | None:
    """Takes the row for this worker (one statement); None if it is not due or someone has it.
    The notification comes back with its channel loaded. Through a Postgres restart the claim
    waits for the database like the record does (if a lost answer hides a claim that did
    commit, the row waits for its lease to end: a delay, never a second send)."""
    claimed = claim_many([notification_id], what=f"claiming notification {notification_id}")
    return claimed[0] if claimed else None


def claim_many(
    notification_ids: Sequence[uuid.UUID | str], *, what: str = "claiming a burst"
) -> list[Notification]:
    """``claim`` for many rows in one statement (a burst): the ones taken for this worker,
    each with its channel loaded, all with the same lease."""
    now = timezone.now()
    params = {
        "ids": [str(i) for i in notification_ids],
        "now": now,
        "until": now + lease(),
        "lease": lease(),
        "lost_error": LOST_ATTEMPT_ERROR,
    }
    rows = durably(lambda: _claim_rows(params), what=what)
    split = len(_NOTIFICATION_FIELDS)
    claimed = []
    for row in rows:
        notification = _from_row(Notification, _NOTIFICATION_FIELDS, row[:split])
        notification.channel = _from_row(Channel, _CHANNEL_FIELDS, row[split:])
        claimed.append(notification)
    return claimed


def _claim_rows(params: dict[str, Any]) -> list[Sequence[Any]]:
    with connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, params)
        return list(cursor.fetchall())


RENEW_SQL = f"""
UPDATE {_TABLE} SET claimed_until = %(until)s
WHERE id = ANY(%(ids)s) AND status = '{Status.SENDING}' AND claimed_until = %(was)s
RETURNING id
"""  # noqa: S608


class LeaseKeeper:
    """Renews the leases of the rows being sent every quarter lease, from its own thread (and
    database connection, opened only if a send lasts that long): one row's send, or a burst's
    (one statement for all of them). ``release`` a row before recording its outcome: the keeper
    leaves it alone from then on, and ``notification.claimed_until`` is the lease it holds. On
    exit the thread has stopped."""

    def __init__(self, *notifications: Notification) -> None:
        self.held = {n.pk: n for n in notifications}
        self.lock = threading.Lock()  # a renewal and a release never interleave
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="lease-keeper")

    def __enter__(self) -> LeaseKeeper:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop.set()
        self.thread.join()

    def release(self, notification: Notification) -> None:
        """Stops renewing this row (its send is over); waits for a renewal in progress."""
        with self.lock:
            self.held.pop(notification.pk, None)

    def _run(self) -> None:
        try:
            while not self.stop.wait(settings.NOTIFY_LEASE_SECONDS / 4) and self._renew():
                pass
        except DatabaseError:
            logger.warning("notifications %s: could not renew their lease", list(self.held))
        finally:
            connection.close()  # this thread's own connection, if it opened one

    def _renew(self) -> bool:
        """Renews every held row whose lease is still ours; False once none is left. The rows
        come from one claim (one row's, or a burst's ``claim_many``), so they share one lease
        and one statement renews them all."""
        with self.lock:
            if not self.held:
                return False
            was = next(iter(self.held.values())).claimed_until
            until = timezone.now() + lease()
            with connection.cursor() as cursor:
                cursor.execute(RENEW_SQL, {"ids": list(self.held), "was": was, "until": until})
                renewed = {row[0] for row in cursor.fetchall()}
            for pk in list(self.held):
                if pk in renewed:
                    self.held[pk].claimed_until = until
                else:  # another worker took it over: its outcome is not ours to keep
                    del self.held[pk]
            return bool(self.held)


def durably(write: Callable[[], T], *, what: str) -> T:
    """Runs ``write`` (idempotent: it records an outcome); if the database connection breaks,
    as a Postgres restart does to every open connection, retries it on a new connection with
    short pauses for up to half the lease, which the lease keeps for exactly this."""
    began = time.monotonic()
    deadline = began + settings.NOTIFY_LEASE_SECONDS / 2
    pause, tries = 0.05, 1
    while True:
        try:
            result = write()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or time.monotonic() + pause > deadline:
                raise
            if tries == 1:
                logger.warning("%s: database unavailable (%s); retrying", what, str(exc).strip())
            _drop_connection()
            time.sleep(pause)
            pause, tries = min(pause * 2, 0.5), tries + 1
            continue
        if tries > 1:
            waited = time.monotonic() - began
            logger.warning("%s: done after %d tries, %.2f s", what, tries, waited)
        return result


def deliver(notification_id: uuid.UUID | str) -> str:
    """Claims, sends and records one notification. Returns what happened: ``sent``,
    ``retry``, ``failed``, ``deferred`` (the receiver is busy or its circuit open: not tried,
    not counted), ``withheld`` (an escalation or repeat whose incident was acknowledged or
    resolved meanwhile: never sent) or ``skipped`` (not due, or already claimed or sent)."""
    notification = claim(notification_id)
    if notification is None:
        return "skipped"
    with bound(notification):
        withheld = withheld_reason(notification)
        if withheld:
            return withhold(notification, withheld)
        with LeaseKeeper(notification) as keeper:
            attempt = send(notification)
            keeper.release(notification)
        return finish(notification, attempt)


def bound(notification: Notification) -> contextlib.AbstractContextManager[None]:
    """Every log line of this delivery names its monitor and account (observability.logs)."""
    return context.bound(
        monitor_id=notification.monitor_id, account_id=notification.channel.owner_id
    )


def withheld_reason(notification: Notification) -> str:
    """Why a claimed row must not be sent ("" if it may): ``acknowledge.withheld_reason``."""
    return acknowledge.withheld_reason(notification.event, notification.incident_id)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One send's outcome, before anything is recorded (``send`` touches no database)."""

    sent: Sent | None
    error: Exception | None
    started: datetime
    duration_ms: float
    deferred: breaker.Deferred | None = None  # not tried: not an attempt (breaker.defer)


def send(notification: Notification) -> Attempt:
    """Sends a claimed row through its channel, within its receiver's limits. Only the
    network and Redis (the limits): a burst runs these side by side in threads that hold no
    database connection, while its task records each outcome (``finish``)."""
    started = timezone.now()
    clock = time.perf_counter()
    try:
        sent, error = _send(notification)
    except breaker.Deferred as deferred:
        return Attempt(None, None, started, 0.0, deferred=deferred)
    return Attempt(sent, error, started, (time.perf_counter() - clock) * 1000)


def finish(notification: Notification, attempt: Attempt) -> str:
    """Records a send's outcome (or puts a deferred row back) and says what happened. The
    row's lease must be released from its ``LeaseKeeper`` first."""
    if attempt.deferred is not None:
        return breaker.defer(notification, attempt.deferred)
    outcome = _record(
        notification,
        attempt.sent,
        attempt.error,
        started=attempt.started,
        duration_ms=attempt.duration_ms,
    )
    metrics.record_delivery(kind=notification.channel.kind, outcome=outcome)
    logger.info(
        "notification %s (%s, %s channel %s): %s in %.0f ms",
        notification.pk,
        notification.event,
        notification.channel.kind,
        notification.channel_id,
        outcome,
        attempt.duration_ms,
    )
    return outcome


def _send(notification: Notification) -> tuple[Sent | None, Exception | None]:
    channel = notification.channel
    if not channel.enabled and notification.event != Notification.Event.TEST:
        reason = channel.disabled_reason or "by its owner"
        return None, PermanentError(f"channel disabled: {reason}")
    payload = acknowledge.with_link(
        notification.payload,
        event=notification.event,
        incident_id=notification.incident_id,
        channel_id=channel.pk,
    )
    try:
        sent = breaker.send(  # per-receiver concurrency limit and circuit breaker
            channel,
            lambda: notifier_for(channel).send(
                channel, payload, idempotency_key=notification.idempotency_key
            ),
        )
    except breaker.Deferred:
        raise  # not tried: deliver() puts it back without counting an attempt
    except (TransientError, PermanentError) as exc:
        return None, exc
    except Exception as exc:  # a bug or an unexpected library error: retry, and log it
        logger.exception("delivering notification %s failed unexpectedly", notification.pk)
        return None, TransientError(f"{type(exc).__name__}: {exc}")
    return sent, None


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
    what = f"recording notification {notification.pk}"
    if sent:
        durably(lambda: _record_sent(notification, code, started, duration_ms, now), what=what)
        return "sent"
    outcome, delay = durably(
        lambda: _record_failure(notification, code, error, started, duration_ms, now), what=what
    )
    counts = notification.event != Notification.Event.TEST and outcome != "skipped"
    if counts:
        streaks.failed(notification.channel, error, permanent=isinstance(error, PermanentError))
    if outcome == "retry":
        queue.enqueue_on_commit([notification.pk], countdown=delay)
    return outcome


def _record_failure(
    notification: Notification,
    code: int | None,
    error: Exception | None,
    started: datetime,
    duration_ms: float,
    now: datetime,
) -> tuple[str, float]:
    """The attempt and what comes next, in one transaction: ``("failed" | "retry" |
    "skipped", delay)``. Safe to run again after a connection broke mid-way."""
    permanent = isinstance(error, PermanentError)
    deadline = retry_deadline(notification)
    give_up = permanent or notification.attempts >= settings.NOTIFY_MAX_ATTEMPTS or now >= deadline
    message = str(error)[:500] if error else ""
    with transaction.atomic():
        DeliveryAttempt.objects.bulk_create(
            [
                DeliveryAttempt(
                    notification_id=notification.pk,
                    number=notification.attempts,
                    outcome=(
                        DeliveryAttempt.Outcome.PERMANENT
                        if permanent
                        else DeliveryAttempt.Outcome.TRANSIENT
                    ),
                    status_code=code,
                    error=message,
                    started_at=started,
                    duration_ms=duration_ms,
                )
            ],
            ignore_conflicts=True,
        )
        # Our lease: if it ran out and another worker claimed the row, its outcome wins.
        ours = Notification.objects.filter(
            pk=notification.pk, status=Status.SENDING, claimed_until=notification.claimed_until
        )
        if give_up:
            failed = ours.update(status=Status.FAILED, claimed_until=None, last_error=message)
            return ("failed" if failed else _lost_lease(notification)), 0.0
        delay = max(
            0.0, min(queue.backoff(notification.attempts), (deadline - now).total_seconds())
        )
        retried = ours.update(
            status=Status.PENDING,
            claimed_until=None,
            next_attempt_at=now + timedelta(seconds=delay),
            last_error=message,
        )
        return ("retry" if retried else _lost_lease(notification)), delay


# The hot path in one statement (one round trip, atomic on its own, safe to repeat): the
# attempt, the sent marker (whoever holds the row now: the message is out) and the end of the
# channel's failing streak. Data-modifying CTEs run to completion whether or not the outer
# query reads them.
RECORD_SENT_SQL = f"""
WITH attempt AS (
    INSERT INTO {_ATTEMPTS}
        (notification_id, number, outcome, status_code, error, started_at, duration_ms)
    VALUES (%(id)s, %(number)s, 'sent', %(code)s, '', %(started)s, %(duration_ms)s)
    ON CONFLICT (notification_id, number) DO NOTHING
), marked AS (
    UPDATE {_TABLE}
    SET status = 'sent', sent_at = %(now)s, claimed_until = NULL, last_error = ''
    WHERE id = %(id)s AND status NOT IN ('sent', 'failed')
), streak AS (
    UPDATE {Channel._meta.db_table}
    SET consecutive_permanent_failures = 0, failing_since = NULL, owner_told_at = NULL
    WHERE id = %(channel_id)s
      AND (consecutive_permanent_failures > 0 OR failing_since IS NOT NULL)
)
SELECT 1
"""  # noqa: S608


def _record_sent(
    notification: Notification,
    code: int | None,
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


def withhold(notification: Notification, reason: str) -> str:
    """Ends a claimed row without sending it (not an attempt): ``withheld``, the reason in
    ``last_error`` (the timeline and delivery log show it); ``skipped`` if our lease was lost
    meanwhile."""
    updated = Notification.objects.filter(
        pk=notification.pk, status=Status.SENDING, claimed_until=notification.claimed_until
    ).update(
        status=Status.WITHHELD,
        claimed_until=None,
        attempts=F("attempts") - 1,
        last_error=reason[:500],
    )
    if not updated:
        return _lost_lease(notification)
    logger.info("notification %s (%s): %s", notification.pk, notification.event, reason)
    return "withheld"


def _lost_lease(notification: Notification) -> str:
    logger.warning("notification %s: lease expired during the attempt", notification.pk)
    return "skipped"
