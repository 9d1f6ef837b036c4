"""API token strings: made, recognised and hashed here, with no I/O.

A token reads ``ga_<8 hex>_<secret>``: ``ga_`` makes a leaked token greppable (secret
scanners, logs), its prefix ``ga_<8 hex>`` is stored in clear to find the row and to show in
lists, and the secret carries 256 random bits. Only the SHA-256 of the whole string is
stored: for a random token of that strength a slow password hash would add nothing but cost
on every request. Keys of the former ``rest_framework.authtoken`` (40 hex characters) are still
accepted: the data migration stored their hash the same way, their first 8 characters as prefix.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "ga_"  # noqa: S105 (the marker, not a secret)
PREFIX_LENGTH = 8
_NEW = re.compile(r"(ga_[0-9a-f]{8})_[A-Za-z0-9_-]{43}")
_LEGACY = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class PresentedToken:
    """A string that has the shape of a token: its prefix and the hash to compare."""

    prefix: str
    digest: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate() -> str:
    """A new token: ``ga_`` + 8 hex + ``_`` + 43 url-safe characters (32 random bytes)."""
    return f"{TOKEN_PREFIX}{secrets.token_hex(PREFIX_LENGTH // 2)}_{secrets.token_urlsafe(32)}"


def parse(token: str) -> PresentedToken | None:
    """The prefix and hash of ``token``, or None when it cannot be a token (no query needed)."""
    if match := _NEW.fullmatch(token):
        return PresentedToken(prefix=match.group(1), digest=digest(token))
    if _LEGACY.fullmatch(token):
        return PresentedToken(prefix=token[:PREFIX_LENGTH], digest=digest(token))
    return None


def matches(stored_digest: str, presented: PresentedToken) -> bool:
    """Constant-time comparison of the stored hash with the presented one."""
    return hmac.compare_digest(stored_digest, presented.digest)
