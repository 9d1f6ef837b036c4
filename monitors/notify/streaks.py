"""A channel that keeps failing: its failing streak, disabling it, and telling its owner by
another channel.

* Every failed attempt (not of a test) starts the channel's streak if none is running
  (``failing_since``); a success ends it (in the delivery's sent statement).
* Once the streak is ``NOTIFY_TELL_OWNER_AFTER_MINUTES`` old, the owner is told once per streak
  (``owner_told_at``, set by a conditional UPDATE so two workers cannot both tell): one
  ``channel_failing`` notification through the outbox to each of the owner's other deliverable
  channels that are not failing themselves, or an email to the account's address if there is
  none.
* After ``NOTIFY_DISABLE_AFTER`` consecutive permanent failures (or a STOP reply) the channel is
  disabled and the owner told the same way (once: a disabled channel receives nothing more).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from monitors.models import Channel, Notification
from monitors.notify import queue, selectors
from monitors.notify.payload import Payload
from monitors.notify.twilio import OptedOut
from shared.links import absolute_url

logger = logging.getLogger(__name__)


def failed(channel: Channel, error: Exception | None, *, permanent: bool) -> None:
    """Counts one failed delivery attempt against ``channel``."""
    now = timezone.now()
    Channel.objects.filter(pk=channel.pk, failing_since__isnull=True).update(failing_since=now)
    if permanent and _disable_if_broken(channel, error):
        return
    cutoff = now - timedelta(minutes=settings.NOTIFY_TELL_OWNER_AFTER_MINUTES)
    first_to_tell = Channel.objects.filter(
        pk=channel.pk, enabled=True, owner_told_at__isnull=True, failing_since__lte=cutoff
    ).update(owner_told_at=now)
    if first_to_tell:
        channel.refresh_from_db()
        since = channel.failing_since or now
        reason = (
            f"deliveries to “{channel.name}” have failed since "
            f"{since:%Y-%m-%d %H:%M} UTC (last error: {str(error)[:200]}); "
            "they are retried, and the channels page lists those that gave up"
        )
        tell_owner(channel, reason, disabled=False, streak=since)


def _disable_if_broken(channel: Channel, error: Exception | None) -> bool:
    """After NOTIFY_DISABLE_AFTER consecutive permanent failures the channel is disabled and
    its owner told. A STOP reply disables an SMS channel at once. True if it was disabled."""
    Channel.objects.filter(pk=channel.pk).update(
        consecutive_permanent_failures=F("consecutive_permanent_failures") + 1
    )
    channel.refresh_from_db()
    if not channel.enabled:
        return False
    now = timezone.now()
    if isinstance(error, OptedOut):
        reason = "the recipient replied STOP"
        Channel.objects.filter(pk=channel.pk).update(opted_out_at=now)
    elif channel.consecutive_permanent_failures >= settings.NOTIFY_DISABLE_AFTER:
        reason = f"{channel.consecutive_permanent_failures} deliveries in a row failed: {error}"
    else:
        return False
    if not Channel.objects.filter(pk=channel.pk, enabled=True).update(
        enabled=False, disabled_reason=reason[:300], owner_told_at=now
    ):
        return False  # another worker disabled it and told the owner
    tell_owner(channel, reason, disabled=True, streak=now)
    return True


def _others(channel: Channel) -> list[Channel]:
    """The owner's other channels that can be expected to deliver."""
    return list(
        Channel.objects.filter(
            owner_id=channel.owner_id,
            enabled=True,
            verified=True,
            opted_out_at__isnull=True,
            failing_since__isnull=True,
        ).exclude(pk=channel.pk)
    )


def payload(channel: Channel, reason: str, *, disabled: bool) -> dict[str, Any]:
    """A version-1 payload, so every kind of channel can say it (no monitor: ``id`` null)."""
    state = "was disabled" if disabled else "keeps failing"
    return Payload(
        event=Notification.Event.CHANNEL_FAILING.value,
        occurred_at=timezone.now(),
        monitor={
            "id": None,
            "name": f"Channel “{channel.name}” {state}",
            "url": absolute_url("/app/channels"),
        },
        channel={"id": channel.pk, "name": channel.name, "kind": channel.kind},
        reason=reason[:500],
        time_zone=selectors.owner_time_zone(channel.owner_id),
    ).as_json()


def tell_owner(channel: Channel, reason: str, *, disabled: bool, streak: datetime) -> None:
    """One notification per other deliverable channel, through the outbox (keys stable per
    streak, so this can run twice harmlessly); an email to the account if there is none."""
    others = _others(channel)
    if not others:
        email = channel.owner.email
        if email:
            transaction.on_commit(lambda: _email_owner(email, channel.name, reason, disabled))
        return
    kind = "disabled" if disabled else "failing"
    body = payload(channel, reason, disabled=disabled)
    rows = Notification.objects.bulk_create(
        [
            Notification(
                channel=other,
                event=Notification.Event.CHANNEL_FAILING,
                idempotency_key=f"channel-{kind}:c{channel.pk}:{streak.timestamp():.0f}:c{other.pk}",
                payload=body,
            )
            for other in others
        ],
        ignore_conflicts=True,
    )
    queue.enqueue_on_commit([row.pk for row in rows])


def _email_owner(email: str, channel_name: str, reason: str, disabled: bool) -> None:
    if disabled:
        subject = f"[growalert] Channel “{channel_name}” was disabled"
        intro = f"We stopped sending to your channel “{channel_name}”: {reason}."
        advice = "Fix the destination, then enable the channel again from your channels page"
    else:
        subject = f"[growalert] Channel “{channel_name}” keeps failing"
        intro = f"Your channel “{channel_name}” is not receiving notifications: {reason}."
        advice = "Check the destination; failed deliveries can be retried from your channels page"
    try:
        send_mail(
            subject=subject,
            message=f"{intro}\n\n{advice} ({absolute_url('/app/channels')}).\n",
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[email],
        )
    except Exception:
        logger.exception("could not tell %s that a channel is failing", email)
