"""Tells the operator when monitoring is blind or late, and when it is not any more.

Beat runs ``check()`` every 30 s (``growalert.tasks.check_monitoring``). A blind *episode*
starts at the first check that finds a reason (``growalert.health.monitoring``) and ends at the
first check that finds none. Once an episode has lasted ``MONITORING_BLIND_ALERT_AFTER_MINUTES``
the staff users (``is_staff``, active, with an email) and ``settings.ADMINS`` get one email;
when it ends they get one "resolved" email. Shorter episodes send nothing.

The episode lives in Redis, not Postgres: the check runs on Celery, so whenever it runs at all
Redis (the broker) is up, while Postgres being down is one of the things it must report. A
Redis lock keeps two overlapping checks from both sending. If Redis itself restarts the
episode is forgotten; a still-blind pipeline then opens a new one (and alerts again after the
delay), which errs on the side of telling.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import DatabaseError, connection

from growalert.health import monitoring

logger = logging.getLogger(__name__)

KEY = "growalert:monitoring_episode"
LOCK_KEY = "growalert:monitoring_episode:lock"


@dataclass(slots=True)
class Episode:
    started_at: float  # epoch seconds
    reasons: list[str]  # every reason seen during the episode, in REASONS order
    alerted_at: float | None = None

    @property
    def since(self) -> str:
        return datetime.fromtimestamp(self.started_at, UTC).isoformat(timespec="seconds")


def _client() -> redis.Redis:
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        decode_responses=True,
    )


def _load(client: redis.Redis) -> Episode | None:
    raw = client.get(KEY)
    if raw is None:
        return None
    try:
        return Episode(**json.loads(str(raw)))
    except (TypeError, ValueError):
        logger.warning("unreadable monitoring episode in Redis; starting over")
        return None


def _save(client: redis.Redis, episode: Episode) -> None:
    client.set(KEY, json.dumps(asdict(episode)))


def load_episode() -> Episode | None:
    """The open episode, or None. Raises RedisError."""
    return _load(_client())


def episode_json() -> dict[str, object] | None:
    """The open episode for /health/deps and the staff banner (None: none, or Redis is down)."""
    try:
        episode = load_episode()
    except redis.RedisError:
        return None
    if episode is None:
        return None
    return {
        "since": episode.since,
        "reasons": episode.reasons,
        "operator_alerted": episode.alerted_at is not None,
    }


def recipients() -> list[str]:
    """Active staff users with an email, and settings.ADMINS (all that is left when Postgres
    is down)."""
    addresses: list[str] = []
    try:
        addresses = list(
            get_user_model()
            .objects.filter(is_staff=True, is_active=True)
            .exclude(email="")
            .order_by("pk")
            .values_list("email", flat=True)
        )
    except DatabaseError as exc:
        connection.close()
        logger.warning("staff users unavailable for the operator alert: %s", exc)
    for _name, address in settings.ADMINS:
        if address not in addresses:
            addresses.append(address)
    return addresses


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60}m" if minutes >= 60 else f"{minutes}m"


def _send(subject: str, body: str) -> bool:
    to = recipients()
    if not to:
        logger.error("monitoring alert not sent: no staff user with an email and no ADMINS")
        return False
    messages = [
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [address]) for address in to
    ]
    try:
        sent = get_connection(fail_silently=False).send_messages(messages) or 0
    except OSError as exc:  # smtplib errors are OSErrors
        logger.warning("monitoring alert not sent: %s", exc)
        return False
    return sent > 0


def _blind_email(episode: Episode, now: float) -> bool:
    lines = "\n".join(f"  - {r}: {monitoring.REASON_TEXT[r]}" for r in episode.reasons)
    return _send(
        f"[growalert] Monitoring is blind or late ({', '.join(episode.reasons)})",
        f"Monitoring has been blind or late since {episode.since} "
        f"({_duration(now - episode.started_at)}):\n{lines}\n\n"
        "Monitors may not be evaluated and their owners may not be notified.\n"
        f"Details: {settings.SITE_URL}/health/deps\n"
        "You will get one more email when it is resolved.\n",
    )


def _resolved_email(episode: Episode, now: float) -> bool:
    return _send(
        "[growalert] Resolved: monitoring is back",
        f"Monitoring was blind or late from {episode.since} for "
        f"{_duration(now - episode.started_at)} ({', '.join(episode.reasons)}); "
        "every check passes again.\n",
    )


def check(now: float | None = None) -> str:
    """One check; returns what it did: ok, started, ongoing, alerted, resolved, busy (another
    check holds the lock) or unknown (Redis cannot be reached)."""
    now = time.time() if now is None else now
    state = monitoring.assess()
    try:
        client = _client()
        lock = client.lock(LOCK_KEY, timeout=120, blocking_timeout=0)
        if not lock.acquire():
            return "busy"
        try:
            return _step(client, state, now)
        finally:
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()
    except redis.RedisError as exc:
        logger.warning("monitoring check: Redis unavailable: %s", exc)
        return "unknown"


def _step(client: redis.Redis, state: monitoring.Assessment, now: float) -> str:
    episode = _load(client)
    if not state.blind:
        if episode is None:
            return "ok"
        if episode.alerted_at is not None and not _resolved_email(episode, now):
            return "ongoing"  # retried at the next check
        client.delete(KEY)
        logger.info("monitoring episode since %s resolved", episode.since)
        return "resolved"
    if episode is None:
        episode = Episode(started_at=now, reasons=list(state.reasons))
        _save(client, episode)
        logger.warning("monitoring is blind or late: %s", ", ".join(state.reasons))
        return "started"
    seen = set(episode.reasons) | set(state.reasons)
    episode.reasons = [r for r in monitoring.REASONS if r in seen]
    delay = settings.MONITORING_BLIND_ALERT_AFTER_MINUTES * 60
    due = episode.alerted_at is None and now - episode.started_at >= delay
    if due and _blind_email(episode, now):
        episode.alerted_at = now
        _save(client, episode)
        return "alerted"
    _save(client, episode)
    return "ongoing"
