"""Public, signed, expiring links to a notification's chart image, for Slack.

Slack's incoming webhooks cannot upload a file, so a Slack alert carries an ``image`` block whose
URL points back here: ``/charts/<token>.png``. The token is the notification's idempotency key
signed with the server's secret (HMAC-SHA256, ``django.core.signing``) and stamped with the time
it was made, so it cannot be guessed or altered, and it stops working after
:data:`MAX_AGE` (Slack fetches the image when the message arrives and keeps its own copy).
No login is needed. The image is the email's (monitors/notify/chart_png.py), rendered once and
cached; it is small and of a fixed size whatever the payload holds.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core import signing
from django.core.cache import cache
from django.urls import reverse
from django.utils.crypto import salted_hmac

from monitors.models import Notification
from monitors.notify import chart_png
from shared.links import absolute_url

SALT = "growalert.notify.chart"
MAX_AGE = timedelta(days=7)
CACHE_SECONDS = 3600
MIN_POINTS = 2  # chart_png draws nothing with fewer


class LinkError(Exception):
    """Why a link is refused: ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def token(idempotency_key: str) -> str:
    return signing.dumps(idempotency_key, salt=SALT)


def url_for(idempotency_key: str, payload: dict[str, Any]) -> str | None:
    """The public chart URL of this notification, or None when it has no chart to show."""
    if len(payload.get("points") or []) < MIN_POINTS:
        return None
    return absolute_url(reverse("notification-chart", args=[token(idempotency_key)]))


def key_of(value: str) -> str:
    """The idempotency key a token names; :class:`LinkError` for a forged or expired one."""
    try:
        key = signing.loads(value, salt=SALT, max_age=MAX_AGE)
    except signing.SignatureExpired as exc:
        raise LinkError("This chart link has expired.", status=410) from exc
    except signing.BadSignature as exc:
        raise LinkError("This is not a chart link of this site.", status=403) from exc
    if not isinstance(key, str):
        raise LinkError("This is not a chart link of this site.", status=403)
    return key


def image(value: str) -> bytes:
    """The PNG a token names (cached); :class:`LinkError` when refused or there is none."""
    key = key_of(value)
    cache_key = f"notify:chart:{salted_hmac(SALT, key).hexdigest()}"
    found = cache.get(cache_key)
    if isinstance(found, bytes):
        return found
    payload = (
        Notification.objects.filter(idempotency_key=key).values_list("payload", flat=True).first()
    )
    png = chart_png.from_payload(payload) if isinstance(payload, dict) else None
    if png is None:
        raise LinkError("There is no chart for this notification.", status=404)
    cache.set(cache_key, png, CACHE_SECONDS)
    return png
