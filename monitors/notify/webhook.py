"""Webhooks: the payload as JSON with a stable idempotency key and an HMAC-SHA256 signature.

Headers: ``Growalert-Event``, ``Growalert-Idempotency-Key`` and ``Growalert-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the channel secret>`` (the
scheme Stripe uses; see docs/notifications.md for verifying it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from monitors.models import Channel
from monitors.notify import http, templating
from monitors.notify.base import Sent


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300) -> bool:
    """What a receiver does (used by our tests and shown in the docs)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, body, timestamp).split("v1=")[1]
    fresh = abs(time.time() - timestamp) <= tolerance
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))


def document(channel: Channel, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    """The JSON sent: the payload as stored, its idempotency key, and a ``message`` object
    (``subject``, ``body``: the channel's templates filled) when the channel has templates."""
    sent = {**payload, "idempotency_key": idempotency_key}
    own = templating.render_for(channel, payload)
    if own.subject is not None or own.body is not None:
        sent["message"] = {"subject": own.subject, "body": own.body}
    return sent


class WebhookNotifier:
    def validate(self, config: dict[str, Any]) -> dict[str, Any]:
        url = config.get("url")
        if not isinstance(url, str) or not url:
            raise ValueError("url: required")
        try:
            http.check_url(url)
        except ValueError as exc:
            raise ValueError(f"url: {exc}") from exc
        return {"url": url}

    def send(self, channel: Channel, payload: dict[str, Any], *, idempotency_key: str) -> Sent:
        body = json.dumps(document(channel, payload, idempotency_key=idempotency_key)).encode()
        headers = http.json_headers(
            {
                "Growalert-Event": str(payload.get("event", "")),
                "Growalert-Idempotency-Key": idempotency_key,
            }
        )
        if channel.secret_ciphertext:
            headers["Growalert-Signature"] = sign(channel.secret, body, int(time.time()))
        return http.post(channel.config["url"], content=body, headers=headers)
