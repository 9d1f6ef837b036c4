"""Outbound HTTP for customer-supplied URLs (webhooks, Slack): timeouts, no redirects to other
hosts, and no requests to private, loopback or link-local addresses (SSRF) unless
``WEBHOOKS_ALLOW_PRIVATE_ADDRESSES`` is on (tests and the local demo).

The host is resolved once, every address it resolves to is checked, and the connection goes to
the checked address (the original name travels in ``Host`` and in TLS SNI, so certificates are
still verified against it). Resolving again at connect time would let a DNS answer with a short
TTL swap a public address for 127.0.0.1 between the check and the request (DNS rebinding).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import certifi
import httpx
from django.conf import settings

from monitors.notify.base import PermanentError, Sent, TransientError

TIMEOUT = httpx.Timeout(5.0, connect=3.0)
MAX_REDIRECTS = 3
MAX_ERROR_BODY = 2048  # bytes of a failed answer kept for the delivery log; the rest is unread

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~13 ms of CPU, more
    than the rest of a delivery, so a new client must not load it again."""
    return ssl.create_default_context(cafile=certifi.where())


def _is_allowed(address: IPAddress) -> bool:
    return address.is_global and not address.is_multicast


def resolve(hostname: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def _split(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    try:
        parts.port  # noqa: B018 (raises for a port that is not a number)
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
    return parts


def _public_address(parts: SplitResult) -> IPAddress:
    hostname = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(hostname, port)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"cannot resolve {hostname}") from exc
    for address in addresses:
        if not _is_allowed(address):
            raise ValueError(f"{hostname} resolves to a private address ({address})")
    return addresses[0]


def check_url(url: str) -> None:
    """Raises ``ValueError`` for a URL we must not call."""
    parts = _split(url)
    if not settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        _public_address(parts)


@dataclass(frozen=True)
class Target:
    """Where to connect (the checked address) and what to tell the server (its name)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def pin(url: str) -> Target:
    """Resolves and checks ``url`` once and returns a request target bound to that address."""
    parts = _split(url)
    if settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        return Target(url)
    address = _public_address(parts)
    host = f"[{address}]" if address.version == 6 else str(address)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + host
    if parts.port:
        netloc += f":{parts.port}"
    name = parts.hostname or ""
    host_header = name if parts.port is None else f"{name}:{parts.port}"
    extensions = {"sni_hostname": name} if parts.scheme == "https" else {}
    return Target(urlunsplit(parts._replace(netloc=netloc)), {"Host": host_header}, extensions)


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
