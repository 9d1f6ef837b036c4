"""Twilio's Messages and Calls APIs: the only module that talks to Twilio.

``POST {TWILIO_API_BASE}/2010-04-01/Accounts/{AccountSid}/Messages.json`` (form-encoded To,
From, Body; HTTP Basic with the account SID and auth token) answers 201 with the message's
``sid`` and ``status``; errors carry Twilio's numeric ``code`` (21610: the recipient replied
STOP; 21211/21614: not a valid mobile number). ``.../Calls.json`` (To, From, and the call's
``Twiml`` inline) starts a voice call the same way and answers 201 with the call's ``sid``
(``CA...``) and ``status`` (``queued``). Twilio signs the requests it makes to growalert
(inbound messages, a call's ``<Gather>`` digits) with :func:`signature`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

import httpx
from django.conf import settings

from monitors.notify.base import PermanentError, TransientError
from monitors.notify.http import ssl_context

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
UNSUBSCRIBED = 21610


@dataclass(frozen=True)
class Message:
    sid: str
    status: str


class OptedOut(PermanentError):
    """The recipient replied STOP: Twilio refuses to message them."""


def configured() -> bool:
    return bool(settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN)


def send_sms(to: str, body: str) -> Message:
    return _create("Messages", {"To": to, "From": settings.TWILIO_FROM_NUMBER, "Body": body})


def create_call(to: str, twiml: str) -> Message:
    """Calls ``to``; Twilio runs ``twiml`` (a ``<Response>`` document) once answered."""
    return _create("Calls", {"To": to, "From": settings.TWILIO_FROM_NUMBER, "Twiml": twiml})


def _create(resource: str, form: dict[str, str]) -> Message:
    if not configured():
        raise PermanentError("Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)")
    sid = settings.TWILIO_ACCOUNT_SID
    url = f"{settings.TWILIO_API_BASE.rstrip('/')}/2010-04-01/Accounts/{sid}/{resource}.json"
    try:
        response = httpx.post(
            url,
            data=form,
            auth=(sid, settings.TWILIO_AUTH_TOKEN),
            timeout=TIMEOUT,
            verify=ssl_context(),
        )
    except httpx.TimeoutException as exc:
        raise TransientError("Twilio timed out") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"Twilio unreachable: {exc}") from exc
    if response.status_code in (200, 201):
        data = response.json()
        return Message(sid=str(data.get("sid", "")), status=str(data.get("status", "")))
    try:
        error = response.json()
    except ValueError:
        error = {}
    detail = f"Twilio {response.status_code}: {error.get('message') or response.text[:200]}"
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(detail, status_code=response.status_code)
    if error.get("code") == UNSUBSCRIBED:
        raise OptedOut(detail, status_code=response.status_code)
    raise PermanentError(detail, status_code=response.status_code)


def signature(url: str, params: dict[str, str]) -> str:
    """Twilio's request signature: base64 HMAC-SHA1 over the URL and the sorted form fields."""
    data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    mac = hmac.new(settings.TWILIO_AUTH_TOKEN.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def valid_signature(url: str, params: dict[str, str], header: str) -> bool:
    return configured() and hmac.compare_digest(signature(url, params), header or "")


def twiml(*verbs: str) -> str:
    """A TwiML document of the given verbs (already escaped XML)."""
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"
