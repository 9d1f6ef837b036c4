"""The optional request signature: ``X-Signature: sha256=<hex>`` over ``<X-Timestamp>.<body>``.

The HMAC key is the SHA-256 hex digest of the device's ingest key: the only form of the key the
server keeps, so growalert can check a signature without storing the key itself, and a device
signs without sending anything new. It proves the body and timestamp were not altered and, with
the replay window (a signature is accepted once, within ``INGEST_SIGNATURE_WINDOW_SECONDS`` of
its timestamp), that a captured request cannot be sent again. It is not a second secret: anyone
holding the ingest key can sign (docs/devices.md explains the choice).
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


class SignatureError(ValueError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def sign(body: bytes, *, timestamp: str, key_hash: str) -> str:
    message = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(key_hash.encode(), message, hashlib.sha256).hexdigest()


def verify(body: bytes, *, signature: str, timestamp: str, key_hash: str, now: float) -> str:
    """Returns the signature's digest (the replay key); raises SignatureError."""
    if not timestamp:
        raise SignatureError("a signed request needs X-Timestamp (Unix seconds)", "no_timestamp")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("X-Timestamp is Unix time in whole seconds", "bad_timestamp")
    window = settings.INGEST_SIGNATURE_WINDOW_SECONDS
    if abs(now - int(timestamp)) > window:
        raise SignatureError(
            f"X-Timestamp is more than {window} s from the server's clock", "stale_timestamp"
        )
    expected = sign(body, timestamp=timestamp, key_hash=key_hash)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()[:200]):
        raise SignatureError("the signature does not match the body", "bad_signature")
    return expected[7:]
