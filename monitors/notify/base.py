"""The small interface every channel kind shares.

A notifier turns a Notification (its payload, see docs/notifications.md) into one message on its
medium and says how it went: :class:`Sent`, or it raises :class:`TransientError` (try again
later: timeouts, 5xx, 429, SMTP hiccups) or :class:`PermanentError` (retrying cannot help:
4xx, invalid address, the recipient opted out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from monitors.models import Channel


@dataclass(frozen=True)
class Sent:
    status_code: int | None = None
    detail: str = ""


class DeliveryError(Exception):
    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransientError(DeliveryError):
    """Worth retrying with backoff."""


class PermanentError(DeliveryError):
    """Retrying cannot help; counts towards disabling the channel."""


class Notifier(Protocol):
    def validate(self, config: dict[str, Any]) -> dict[str, Any]:
        """Cleans a channel's config or raises ``ValueError`` naming what is wrong."""
        ...

    def send(self, channel: Channel, payload: dict[str, Any], *, idempotency_key: str) -> Sent: ...
