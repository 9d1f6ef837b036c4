"""Voice calls through Twilio Programmable Voice: the alert is read out, then "press 1 to
acknowledge" (a TwiML ``<Gather>`` whose callback, signed by Twilio and carrying a signed token
for this incident and channel, acknowledges it: monitors/notify/api.py). Like SMS, a number
proves consent with a one-time code (read out in a call) before it is called with alerts."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from monitors.models import Channel
from monitors.notify import acknowledge, messages, twilio
from monitors.notify.base import PermanentError, Sent
from monitors.notify.sms import E164

MAX_SPOKEN = 600  # characters read out


def spoken(payload: dict[str, Any]) -> str:
    text = f"growalert alert. {messages.subject(payload)}. {messages.headline(payload)}."
    return text[:MAX_SPOKEN]


def alert_twiml(payload: dict[str, Any], channel_id: int) -> str:
    """Says the alert; for an open incident, asks for 1 to acknowledge it (twice)."""
    say = f"<Say>{escape(spoken(payload))}</Say>"
    incident_id = (payload.get("incident") or {}).get("id")
    if incident_id is None or payload.get("event") not in acknowledge.ACKABLE_EVENTS:
        return twilio.twiml(say)
    action = quoteattr(acknowledge.gather_url(int(incident_id), channel_id))
    ask = "<Say>Press 1 to acknowledge this alert.</Say>"
    gather = f'<Gather numDigits="1" timeout="8" method="POST" action={action}>{say}{ask}</Gather>'
    return twilio.twiml(gather, "<Say>No key was pressed. Goodbye.</Say>")


def code_twiml(code: str) -> str:
    digits = ", ".join(code)
    words = f"Your growalert code is {digits}. Again: {digits}."
    return twilio.twiml(f"<Say>{escape(words)}</Say>")


class VoiceNotifier:
    def validate(self, config: dict[str, Any]) -> dict[str, Any]:
        phone = str(config.get("phone", "")).replace(" ", "").replace("-", "")
        if not E164.match(phone):
            raise ValueError("phone: an international number such as +15551234567")
        return {"phone": phone}

    def send(self, channel: Channel, payload: dict[str, Any], *, idempotency_key: str) -> Sent:
        if not channel.verified:
            raise PermanentError("the number is not verified")
        call = twilio.create_call(channel.config["phone"], alert_twiml(payload, channel.pk))
        return Sent(201, f"Twilio call {call.sid} ({call.status})")
