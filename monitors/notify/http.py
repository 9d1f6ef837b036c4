"""Outbound HTTP for customer-supplied URLs (webhooks, Slack): timeouts, no redirects to other
hosts, and every connection through the SSRF guard of ``monitors/outbound.py`` (no private,
loopback or link-local addresses unless ``WEBHOOKS_ALLOW_PRIVATE_ADDRESSES`` is on, the name
resolved once and the connection pinned to the checked address).

Connections are kept between sends to the same receiver (HTTP keep-alive, ``_Clients``): a
burst to one endpoint, or a receiver's next alert within a few seconds, skips the TCP (and TLS)
handshake. Measured on loopback, one request after another: over https 2.7-3.0 ms of CPU per
request with a new connection each, 0.5-0.6 ms on a kept one (over http 1.1 and 0.5 ms); in
bursts of 100 (``bench/profile_burst.py --keep-alive --tls``) the delivery process's CPU per
notification about halved (docs/notifications.md). One client per receiver name *and*
checked address: connections are never shared between two names that resolve to one address
(each was verified against its own name), and a name that resolves elsewhere gets new ones.
"""

from __future__ import annotations

import functools
import os
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import httpx
from django.conf import settings

from monitors import outbound
from monitors.notify.base import PermanentError, Sent, TransientError

TIMEOUT = httpx.Timeout(5.0, connect=3.0)
MAX_REDIRECTS = 3
MAX_ERROR_BODY = 2048  # bytes of a failed answer kept for the delivery log; the rest is unread


_ssl_lock = threading.Lock()


def ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~13 ms of CPU, more
    than the rest of a delivery, so a new client must not load it again. The delivery worker's
    threads share it: it is only read once built (OpenSSL allows that across threads). It is
    built under a lock: the first burst's sends all start at once, and without it each of
    them built one (measured: 100 threads, ~0.5 s of CPU)."""
    with _ssl_lock:
        return _built_once()


@functools.cache
def _built_once() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


def _allow_private() -> bool:
    return bool(settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES)


def check_url(url: str) -> None:
    """Raises ``ValueError`` (``outbound.Refused``) for a URL we must not call."""
    outbound.check_url(url, allow_private=_allow_private())


def pin(url: str) -> outbound.Target:
    """Resolves and checks ``url`` once and returns a request target bound to that address."""
    return outbound.pin(url, allow_private=_allow_private())


def post(url: str, *, content: bytes, headers: dict[str, str]) -> Sent:
    """POSTs and classifies the answer: 2xx sent; 429/5xx/timeouts transient; other 4xx and
    refused addresses permanent. Redirects are followed only within the same host."""
    host = urlsplit(url).netloc
    try:
        for _ in range(MAX_REDIRECTS + 1):
            status, location, text = _post_once(url, content, headers)
            if location is None:
                return _classify(status, text)
            target = urljoin(url, location)
            if urlsplit(target).netloc != host:
                raise PermanentError(
                    f"redirected to another host ({urlsplit(target).netloc})",
                    status_code=status,
                )
            url = target
    except httpx.TimeoutException as exc:
        raise TransientError(f"timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"connection failed: {exc}") from exc
    raise PermanentError("too many redirects")


def _post_once(url: str, content: bytes, headers: dict[str, str]) -> tuple[int, str | None, str]:
    """One request to the checked address, on a kept connection to this receiver when there
    is one; reads at most MAX_ERROR_BODY bytes of the answer (an answer not read to its end
    closes its connection)."""
    try:
        target = pin(url)
    except ValueError as exc:
        raise PermanentError(f"refused: {exc}") from exc
    pinned = urlsplit(target.url)
    with clients.using((pinned.scheme, target.hostname.lower(), pinned.netloc)) as client:
        request = client.build_request(
            "POST",
            target.url,
            content=content,
            headers={**headers, **target.headers},
            extensions=target.extensions,
        )
        response = client.send(request, stream=True)
        try:
            if response.is_redirect:
                return response.status_code, response.headers.get("location", ""), ""
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) >= MAX_ERROR_BODY:
                    break
            return response.status_code, None, body[:MAX_ERROR_BODY].decode("utf-8", "replace")
        finally:
            response.close()


# Kept connections. A kept connection is closed after KEEPALIVE_S unused: below the shortest
# idle timeout common servers use (Node.js 5 s; nginx 75 s, load balancers 60 s), so a request
# is not sent on a connection the receiver is closing at that moment (it would fail as a
# transient error and be retried). A receiver unused that long loses its client (its sockets
# closed) at the next sweep; at most MAX_RECEIVERS are kept per process, the least recently
# used closed past that, and each keeps as many idle connections as it may have sends at once
# (``NOTIFY_RECEIVER_CONCURRENCY``, at most MAX_IDLE_PER_RECEIVER). Busy receivers are never
# waited for here: the receiver limits (``breaker``) bound the sends.
KEEPALIVE_S = 4.0
MAX_RECEIVERS = 64
MAX_IDLE_PER_RECEIVER = 128
SWEEP_EVERY_S = 1.0

_Key = tuple[str, str, str]  # scheme, receiver name, checked address and port


def _new_client() -> httpx.Client:
    # trust_env=False: no HTTP(S)_PROXY from the environment, which would bypass the check.
    return httpx.Client(
        timeout=TIMEOUT,
        follow_redirects=False,
        trust_env=False,
        verify=ssl_context(),
        limits=httpx.Limits(
            max_connections=None,
            max_keepalive_connections=min(
                MAX_IDLE_PER_RECEIVER, max(1, settings.NOTIFY_RECEIVER_CONCURRENCY)
            ),
            keepalive_expiry=KEEPALIVE_S,
        ),
    )


@dataclass(slots=True)
class _Kept:
    client: httpx.Client
    users: int = 0  # requests using it now
    last_used: float = 0.0
    dropped: bool = False  # swept or evicted: closed once its last user is done


class _Clients:
    """The process's clients by receiver (an httpx client is safe to share between threads).
    A client is closed only when nobody uses it: one dropped while a request is under way is
    closed by that request's end. A forked child starts with none of its parent's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[_Key, _Kept] = OrderedDict()
        self._pid = os.getpid()
        self._swept = 0.0

    @contextmanager
    def using(self, key: _Key) -> Iterator[httpx.Client]:
        closing: list[_Kept] = []
        now = time.monotonic()
        with self._lock:
            if self._pid != os.getpid():  # the parent's sockets are not this process's
                self._kept, self._pid = OrderedDict(), os.getpid()
            if now - self._swept >= SWEEP_EVERY_S:
                self._swept = now
                closing += self._drop(
                    [
                        k
                        for k, kept in self._kept.items()
                        if kept.users == 0 and now - kept.last_used > KEEPALIVE_S
                    ]
                )
            kept = self._kept.get(key)
            if kept is None:
                kept = self._kept[key] = _Kept(_new_client())
                closing += self._drop(list(self._kept)[: max(0, len(self._kept) - MAX_RECEIVERS)])
            self._kept.move_to_end(key)
            kept.users += 1
            kept.last_used = now
        _close(closing)
        try:
            yield kept.client
        finally:
            with self._lock:
                kept.users -= 1
                kept.last_used = time.monotonic()
                done = kept.dropped and kept.users == 0
            _close([kept] if done else [])

    def _drop(self, keys: list[_Key]) -> list[_Kept]:
        """Forgets these receivers' clients (under the lock); returns those nobody uses."""
        idle = []
        for key in keys:
            kept = self._kept.pop(key)
            kept.dropped = True
            if kept.users == 0:
                idle.append(kept)
        return idle

    def close_all(self) -> None:
        """Closes every client nobody uses (tests, a worker's shutdown)."""
        with self._lock:
            idle = self._drop(list(self._kept))
        _close(idle)

    def __len__(self) -> int:
        return len(self._kept)


def _close(kept: list[_Kept]) -> None:
    for each in kept:
        each.client.close()


clients = _Clients()


def _classify(code: int, text: str) -> Sent:
    if 200 <= code < 300:
        return Sent(code)
    detail = f"HTTP {code}: {text[:200]}"
    if code == 429 or code >= 500:
        raise TransientError(detail, status_code=code)
    raise PermanentError(detail, status_code=code)


def json_headers(extra: dict[str, Any] | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": "growalert/1", **(extra or {})}
