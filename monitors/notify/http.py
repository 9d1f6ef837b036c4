"""Outbound HTTP for customer-supplied URLs (webhooks, Slack): timeouts, no redirects to other
hosts, and no requests to private, loopback or link-local addresses (SSRF) unless
``WEBHOOKS_ALLOW_PRIVATE_ADDRESSES`` is on (tests and the local demo)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings

from monitors.notify.base import PermanentError, Sent, TransientError

TIMEOUT = httpx.Timeout(5.0, connect=3.0)
MAX_REDIRECTS = 3


def check_url(url: str) -> None:
    """Raises ``ValueError`` for a URL we must not call."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve {parts.hostname}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise ValueError(f"{parts.hostname} resolves to a private address ({address})")


def post(url: str, *, content: bytes, headers: dict[str, str]) -> Sent:
    """POSTs and classifies the answer: 2xx sent; 429/5xx/timeouts transient; other 4xx and
    refused addresses permanent. Redirects are followed only within the same host."""
    try:
        check_url(url)
    except ValueError as exc:
        raise PermanentError(f"refused: {exc}") from exc
    host = urlsplit(url).netloc
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                response = client.post(url, content=content, headers=headers)
                if not response.is_redirect:
                    return _classify(response)
                target = urljoin(url, response.headers.get("location", ""))
                if urlsplit(target).netloc != host:
                    raise PermanentError(
                        f"redirected to another host ({urlsplit(target).netloc})",
                        status_code=response.status_code,
                    )
                url = target
    except httpx.TimeoutException as exc:
        raise TransientError(f"timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"connection failed: {exc}") from exc
    raise PermanentError("too many redirects")


def _classify(response: httpx.Response) -> Sent:
    code = response.status_code
    if 200 <= code < 300:
        return Sent(code)
    detail = f"HTTP {code}: {response.text[:200]}"
    if code == 429 or code >= 500:
        raise TransientError(detail, status_code=code)
    raise PermanentError(detail, status_code=code)


def json_headers(extra: dict[str, Any] | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": "growalert/1", **(extra or {})}
