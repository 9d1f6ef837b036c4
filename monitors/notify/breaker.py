"""Per-receiver limits: a dead or slow receiver costs its own notifications only.

A *receiver* is where a send goes: a webhook's ``host:port``, or one Slack incoming webhook
(each is a separate endpoint with its own rate limit). Email and SMS go through the
deployment's own relay and Twilio and are not limited here. Two rules, both kept in Redis so
they hold across every delivery worker, process and thread:

* **Concurrency.** At most ``NOTIFY_RECEIVER_CONCURRENCY`` sends to one receiver at a time. A
  slot is a lease in a sorted set (expiring after ``LEASE``, so a killed worker's slot comes
  back); a send that finds every slot taken waits up to ``NOTIFY_RECEIVER_BUSY_WAIT_SECONDS``
  for one, then is deferred.
* **Circuit breaker.** ``NOTIFY_BREAKER_FAILURES`` transient failures in a row (timeouts,
  refused connections, 5xx, 429) open the receiver's circuit: for
  ``NOTIFY_BREAKER_COOLDOWN_SECONDS`` every send to it is deferred without being tried. Then the
  circuit is half-open: one trial send goes through (the others are deferred); its success
  closes the circuit, its failure opens it for twice the last cool-down (at most 16 times the
  setting: a long outage is probed every few minutes, not every 30 s). Any answer from the receiver
  that is not a transient failure (2xx, or a 4xx: it is up) resets the streak.

A deferred notification goes back to ``pending`` for later, with its normal backoff (at least
until the circuit may close), and its attempt is handed back: waiting for a receiver never
brings a notification closer to giving up, and it is never lost (see :func:`defer`).
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from redis.commands.core import Script

from monitors.models import Channel, Notification
from monitors.notify import queue
from monitors.notify.base import Sent, TransientError

logger = logging.getLogger(__name__)

# A slot's lease: about the longest one send takes within http.TIMEOUT (connect 3 s, then 5 s
# to write and 5 s to read). A worker killed with SIGKILL never gives its slots back: they come
# back when this ends (it was 60 s, and the fault drill saw a receiver's every send deferred
# that long after a kill). A send that outlasts it lets one more send through, no more.
LEASE_MS = 15_000
BUSY_RETRY_MS = 1000  # every slot taken: try again about this soon
# While a send waits for a slot (NOTIFY_RECEIVER_BUSY_WAIT_SECONDS), its first pause between
# tries and the longest: a healthy receiver hands a slot back within milliseconds.
BUSY_POLL_FIRST_S = 0.005
BUSY_POLL_LAST_S = 0.05
TRIAL_RETRY_MS = 5000  # half-open, a trial under way: about one send timeout (http.TIMEOUT)
COOLDOWN_GROWTH = 16  # failed trials in a row double the cool-down up to this many times it
PREFIX = "growalert:receiver:"
HTTP_KINDS = {"webhook": "host", "slack": "url"}


class Deferred(Exception):
    """The send was not tried: the receiver is busy or its circuit is open."""

    def __init__(self, reason: str, *, retry_after: float) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


# Admission in one round trip. KEYS: slots (sorted set of leases), state (hash: fails,
# open_until, trial, trial_until). ARGV: token, limit, lease ms, busy retry ms, trial retry ms.
# Returns {1, 0} admitted, {0, wait ms, reason}.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[3])
local open_until = tonumber(redis.call('HGET', KEYS[2], 'open_until') or '0')
local trial = false
if open_until > 0 then
    if now < open_until then
        return {0, open_until - now, 'open'}
    end
    local trial_until = tonumber(redis.call('HGET', KEYS[2], 'trial_until') or '0')
    if trial_until > now then
        return {0, math.min(trial_until - now, tonumber(ARGV[5])), 'half-open'}
    end
    trial = true
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return {0, tonumber(ARGV[4]), 'busy'}
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
if trial then
    redis.call('HSET', KEYS[2], 'trial', ARGV[1], 'trial_until', now + lease)
end
return {1, 0, trial and 'trial' or 'closed'}
"""

# The outcome, and the slot handed back. ARGV: token, 1 for a transient failure else 0,
# failures to open, cool-down ms. Each opening in a row doubles the cool-down, up to
# COOLDOWN_GROWTH times it (a long outage is probed less often). Returns the cool-down in ms
# when this outcome opened the circuit, else 0.
_DONE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
local was_trial = redis.call('HGET', KEYS[2], 'trial') == ARGV[1]
if ARGV[2] == '0' then
    redis.call('DEL', KEYS[2])
    return 0
end
local fails = redis.call('HINCRBY', KEYS[2], 'fails', 1)
local opened = 0
local open_until = tonumber(redis.call('HGET', KEYS[2], 'open_until') or '0')
if was_trial or (fails >= tonumber(ARGV[3]) and open_until <= now) then
    local opens = redis.call('HINCRBY', KEYS[2], 'opens', 1)
    opened = tonumber(ARGV[4]) * math.min(2 ^ (opens - 1), tonumber(ARGV[5]))
    redis.call('HSET', KEYS[2], 'open_until', now + opened)
    redis.call('HDEL', KEYS[2], 'trial', 'trial_until')
end
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) * tonumber(ARGV[5]) + 86400000)
return opened
"""

# Connections to Redis per process. A burst's threads (``NOTIFY_BURST_CONCURRENCY``, 100) each
# run two short scripts per send, one thread at a time holding the interpreter: a few
# connections serve them all. Unbounded, the first burst after a start opened one per thread,
# 100 connections made at once under the pool's lock: that burst took 490-615 ms against
# 230-290 ms for the next (``bench/profile_burst.py 100 --keep-alive``); bounded at 16 and
# opened at the warm-up, 350-460 ms (the rest: its first connections to the receiver).
CONNECTIONS = 16
# How long a thread waits for a free connection before sending without the limits.
CONNECTION_WAIT_S = 2.0

_client: redis.Redis | None = None
_client_lock = threading.Lock()
_scripts: dict[str, Script] = {}  # made with the client


def _redis() -> redis.Redis:
    """One client per process, shared by the delivery threads (redis-py's pool is
    thread-safe); created under a lock so two threads never build two."""
    global _client
    with _client_lock:
        if _client is None:
            pool = redis.BlockingConnectionPool.from_url(
                settings.REDIS_URL,
                max_connections=CONNECTIONS,
                timeout=CONNECTION_WAIT_S,
                socket_timeout=2.0,
                socket_connect_timeout=2.0,
            )
            _client = redis.Redis(connection_pool=pool)
            _scripts.update(
                admit=_client.register_script(_ADMIT), done=_client.register_script(_DONE)
            )
        return _client


def _script(name: str) -> Script:
    """A registered script: run by its SHA (EVALSHA), loaded again if Redis forgot it."""
    _redis()
    return _scripts[name]


def connect() -> None:
    """Opens the process's connections to Redis now (a worker's start: ``notify.warmup``), so
    that the first burst's threads find them open."""
    pool = _redis().connection_pool
    opened = []
    try:
        for _ in range(CONNECTIONS):
            opened.append(pool.get_connection())
    finally:
        for connection in opened:
            pool.release(connection)
    for text in (_ADMIT, _DONE):
        _redis().script_load(text)


def receiver_of(channel: Channel) -> str | None:
    """The receiver a channel's sends go to, or None for kinds not limited here."""
    part = HTTP_KINDS.get(channel.kind)
    url = (channel.config or {}).get("url")
    if part is None or not isinstance(url, str):
        return None
    if part == "url":  # the URL is the secret: keys and logs carry a digest of it
        return f"{channel.kind}:{hashlib.sha256(url.encode()).hexdigest()[:24]}"
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return f"{(parts.hostname or '').lower()}:{port}"


def _keys(receiver: str) -> list[str]:
    return [f"{PREFIX}{receiver}:slots", f"{PREFIX}{receiver}:state"]


@contextmanager
def _admitted(receiver: str) -> Iterator[Callable[[bool], None]]:
    """Admits one send or raises Deferred. Without Redis the send goes ahead unlimited: the
    limits protect delivery, they must not stop it (and a message already sent must never be
    reported failed because its outcome could not be counted)."""
    keys = _keys(receiver)
    token = uuid.uuid4().hex
    limit = max(1, settings.NOTIFY_RECEIVER_CONCURRENCY)
    deadline = time.monotonic() + settings.NOTIFY_RECEIVER_BUSY_WAIT_SECONDS
    pause = BUSY_POLL_FIRST_S
    while True:
        try:
            admitted, wait_ms, state = _script("admit")(
                keys, [token, limit, LEASE_MS, BUSY_RETRY_MS, TRIAL_RETRY_MS]
            )
        except redis.RedisError as exc:
            logger.warning("receiver %s: limits unavailable, sending anyway (%s)", receiver, exc)
            yield lambda transient: None
            return
        if admitted or state not in (b"busy", "busy") or time.monotonic() + pause > deadline:
            break
        # every slot taken: one comes back as a send ends; try again soon, then less often
        time.sleep(pause * random.uniform(0.8, 1.2))
        pause = min(pause * 1.5, BUSY_POLL_LAST_S)
    if not admitted:
        state = state.decode() if isinstance(state, bytes) else str(state)
        raise Deferred(f"receiver {state}", retry_after=int(wait_ms) / 1000)
    outcome: list[bool] = []
    try:
        yield outcome.append
    finally:
        transient = bool(outcome and outcome[0])
        cooldown_ms = int(settings.NOTIFY_BREAKER_COOLDOWN_SECONDS * 1000)
        failures = max(1, settings.NOTIFY_BREAKER_FAILURES)
        try:
            opened = _script("done")(
                keys, [token, int(transient), failures, cooldown_ms, COOLDOWN_GROWTH]
            )
        except redis.RedisError as exc:  # the slot's lease expires on its own
            logger.warning("receiver %s: outcome not counted (%s)", receiver, exc)
        else:
            if opened:
                logger.warning("receiver %s: circuit open for %d ms", receiver, int(opened))


def send(channel: Channel, send: Callable[[], Sent]) -> Sent:
    """Runs ``send`` within the channel's receiver limits. Raises :class:`Deferred` when it may
    not be tried now; ``send``'s own errors pass through (and count for the breaker)."""
    receiver = receiver_of(channel)
    if receiver is None:
        return send()
    with _admitted(receiver) as record:
        try:
            sent = send()
        except TransientError:
            record(True)
            raise
        except Exception:  # a permanent error (the receiver answered) or a bug: not its fault
            record(False)
            raise
        record(False)
        return sent


def state(channel: Channel) -> dict[str, Any]:
    """The receiver's slots in use and circuit state (for tests and the operator)."""
    receiver = receiver_of(channel)
    if receiver is None:
        return {}
    client = _redis()
    slots, state_key = _keys(receiver)
    raw = client.hgetall(state_key)
    return {
        "receiver": receiver,
        "in_flight": client.zcard(slots),
        **{k.decode(): v.decode() for k, v in raw.items()},  # type: ignore[union-attr]
    }


def forget(receiver: str) -> None:
    """Forgets a receiver's slots and circuit (tests; an operator after fixing a receiver):
    ``forget("hooks.example.com:443")``."""
    _redis().delete(*_keys(receiver))


def defer(notification: Notification, deferred: Deferred) -> str:
    """Puts a claimed notification back for later without counting the attempt: ``pending``
    again, due after its normal backoff or when the receiver may take it, whichever is later,
    with the reason in ``last_error``. Returns ``deferred`` (``skipped`` if our lease was lost
    meanwhile: whoever holds the row now decides)."""
    attempts = max(0, notification.attempts - 1)  # the claim counted one; this was none
    # jitter: the notifications waiting for one circuit do not all come back at the same instant
    delay = max(queue.backoff(max(1, attempts)), deferred.retry_after * random.uniform(1, 1.2))
    Status = Notification.DeliveryStatus
    with transaction.atomic():
        updated = Notification.objects.filter(
            pk=notification.pk, status=Status.SENDING, claimed_until=notification.claimed_until
        ).update(
            status=Status.PENDING,
            claimed_until=None,
            attempts=F("attempts") - 1,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            last_error=f"deferred: {deferred}"[:500],
        )
        if not updated:
            return "skipped"
        queue.enqueue_on_commit([notification.pk], countdown=delay)
    return "deferred"
