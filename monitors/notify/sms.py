"""SMS through Twilio. A number must be verified with a one-time code before it receives
alerts, and the recipient can reply STOP (consent, as the AlertStream seed requires)."""

from __future__ import annotations

import re
from typing import Any

from monitors.models import Channel
from monitors.notify import messages, templating, twilio
from monitors.notify.base import PermanentError, Sent

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_LENGTH = 320  # two SMS segments


def body(payload: dict[str, Any], own: templating.Rendered | None = None) -> str:
    """The text: subject and headline (or the channel's own), the link, how to opt out."""
    parts = [
        (own.subject if own else None) or messages.subject(payload),
        (own.body if own else None) or messages.headline(payload),
    ]
    url = payload.get("monitor", {}).get("url")
    text = " — ".join(p for p in parts if p)
    suffix = f" {url}" if url else ""
    incident = (payload.get("incident") or {}).get("id")
    if incident is not None and payload.get("acknowledge_url"):
        suffix += f" Reply ACK {incident} to acknowledge."
    tail = " Reply STOP to opt out"
    return (text[: MAX_LENGTH - len(suffix) - len(tail)] + suffix + tail)[:MAX_LENGTH]


class SmsNotifier:
    def validate(self, config: dict[str, Any]) -> dict[str, Any]:
        phone = str(config.get("phone", "")).replace(" ", "").replace("-", "")
        if not E164.match(phone):
            raise ValueError("phone: an international number such as +15551234567")
        return {"phone": phone}

    def send(self, channel: Channel, payload: dict[str, Any], *, idempotency_key: str) -> Sent:
        if channel.opted_out_at is not None:
            raise PermanentError("the recipient replied STOP")
        if not channel.verified:
            raise PermanentError("the number is not verified")
        message = twilio.send_sms(
            channel.config["phone"], body(payload, templating.render_for(channel, payload))
        )
        return Sent(201, f"Twilio {message.sid} ({message.status})")
