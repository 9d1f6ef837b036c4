"""Outbound HTTP for customer-supplied URLs (webhooks, Slack): timeouts, no redirects to other
hosts, and every connection through the SSRF guard of ``monitors/outbound.py`` (no private,
loopback or link-local addresses unless ``WEBHOOKS_ALLOW_PRIVATE_ADDRESSES`` is on, the name
resolved once and the connection pinned to the checked address).
"""

from __future__ import annotations

import functools
import ssl
import threading
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
        # trust_env=False: no HTTP(S)_PROXY from the environment, which would bypass the check.
        with httpx.Client(
            timeout=TIMEOUT, follow_redirects=False, trust_env=False, verify=ssl_context()
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                status, location, text = _post_once(client, url, content, headers)
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


def _post_once(
    client: httpx.Client, url: str, content: bytes, headers: dict[str, str]
) -> tuple[int, str | None, str]:
    """One request to the checked address; reads at most MAX_ERROR_BODY bytes of the answer."""
    try:
        target = pin(url)
    except ValueError as exc:
        raise PermanentError(f"refused: {exc}") from exc
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


def _classify(code: int, text: str) -> Sent:
    if 200 <= code < 300:
        return Sent(code)
    detail = f"HTTP {code}: {text[:200]}"
    if code == 429 or code >= 500:
        raise TransientError(detail, status_code=code)
    raise PermanentError(detail, status_code=code)


def json_headers(extra: dict[str, Any] | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": "growalert/1", **(extra or {})}
