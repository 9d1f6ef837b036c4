"""The SSRF guard for every connection to a customer-supplied URL: webhooks and Slack
(``monitors/notify/http.py``) and InfluxDB sources (``monitors/influxdb/client.py``).

* http and https only;
* the host is resolved once and every address it resolves to is checked: private, loopback,
  link-local, multicast, reserved and unspecified addresses are refused (also when they hide in
  an IPv4-mapped, 6to4 or NAT64 IPv6 address) unless the operator allows private addresses;
* the deployment's own InfluxDB (``settings.INFLUXDB_URL``) is refused even then: its address
  and port, and for a local one any loopback alias on that port (``localhost``, ``127.0.0.2``,
  ``[::1]``, ``[::ffff:127.0.0.1]``, this machine's own addresses);
* the connection goes to the checked address (the original name travels in ``Host`` and in
  TLS SNI, so certificates are still verified against it). Resolving again at connect time
  would let a DNS answer with a short TTL swap a public address for 127.0.0.1 between the
  check and the request (DNS rebinding).

Callers follow no redirect to another host (webhooks) or none at all (InfluxDB).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(ValueError):
    """A URL the guard will not connect to. The message names the reason and may name the
    address: it is for the log and the operator, not for a customer's screen."""


def _lookup(hostname: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def resolve(hostname: str, port: int) -> list[IPAddress]:
    """A customer URL's addresses (tests replace this resolver; the deployment's own
    addresses below are always looked up for real)."""
    return _lookup(hostname, port)


def _embedded(address: IPAddress) -> IPAddress | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), if any."""
    if address.version == 4:
        return None
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def unwrap(address: IPAddress) -> IPAddress:
    """The address a connection really reaches: ``::ffff:127.0.0.1`` is 127.0.0.1."""
    return _embedded(address) or address


def is_public(address: IPAddress) -> bool:
    return all(
        a.is_global and not (a.is_multicast or a.is_reserved or a.is_unspecified)
        for a in (address, unwrap(address))
    )


def split(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("must be an http(s) URL")
    try:
        parts.port  # noqa: B018 (raises for a port that is not a number)
    except ValueError as exc:
        raise Refused("has an invalid port") from exc
    return parts


def default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


@functools.cache
def _machine_addresses() -> frozenset[IPAddress]:
    """This machine's own addresses by its host name (a server bound to 0.0.0.0 answers on
    them as on loopback)."""
    try:
        return frozenset(unwrap(a) for a in _lookup(socket.gethostname(), 0))
    except (OSError, UnicodeError):
        return frozenset()


def _is_local(address: IPAddress) -> bool:
    return address.is_loopback or address.is_unspecified or address in _machine_addresses()


@functools.cache
def _influx_endpoint(url: str) -> tuple[frozenset[IPAddress], int]:
    parts = urlsplit(url)
    port = default_port(parts)
    try:
        addresses = frozenset(unwrap(a) for a in _lookup(parts.hostname or "", port))
    except (OSError, UnicodeError):
        addresses = frozenset()
    return addresses, port


def is_deployment_influx(address: IPAddress, port: int) -> bool:
    """True when ``address:port`` reaches the deployment's own InfluxDB."""
    own, own_port = _influx_endpoint(settings.INFLUXDB_URL)
    if port != own_port:
        return False
    address = unwrap(address)
    return address in own or (_is_local(address) and any(_is_local(a) for a in own))


def check_address(address: IPAddress, port: int, *, allow_private: bool) -> None:
    if is_deployment_influx(address, port):
        raise Refused(f"{address} port {port} is the deployment's own InfluxDB")
    if not allow_private and not is_public(address):
        raise Refused(f"resolves to a private address ({address})")


@dataclass(frozen=True)
class Target:
    """Where to connect (the checked address) and what to tell the server (its name)."""

    url: str
    hostname: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def pin(url: str, *, allow_private: bool) -> Target:
    """Resolves and checks ``url`` once and returns a request target bound to that address.
    Raises ``Refused``."""
    parts = split(url)
    name = parts.hostname or ""
    port = default_port(parts)
    try:
        addresses = resolve(name, port)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"cannot resolve {name}") from exc
    if not addresses:
        raise Refused(f"cannot resolve {name}")
    for address in addresses:
        check_address(address, port, allow_private=allow_private)
    address = addresses[0]
    host = f"[{address}]" if address.version == 6 else str(address)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + host
    if parts.port:
        netloc += f":{parts.port}"
    bracketed = f"[{name}]" if ":" in name else name
    host_header = bracketed if parts.port is None else f"{bracketed}:{parts.port}"
    extensions = {"sni_hostname": name} if parts.scheme == "https" else {}
    return Target(
        urlunsplit(parts._replace(netloc=netloc)), name, {"Host": host_header}, extensions
    )


def check_url(url: str, *, allow_private: bool) -> None:
    """Raises ``Refused`` for a URL we must not call."""
    pin(url, allow_private=allow_private)
