"""Absolute links for emails and notifications: always ``GROWALERT_SITE_URL`` + a path.

One rule for every link that leaves the site (notification payloads, emails, the Customer
Portal's return URL): the request that triggered it (its Host, its scheme behind a proxy) plays
no part, and in production ``check --deploy`` insists that the base is https (growalert.W001).
"""

from __future__ import annotations

from django.conf import settings


def absolute_url(path: str = "/") -> str:
    """``path`` (a path on this site, ``/app/...``) on the public base URL."""
    if not path.startswith("/"):
        path = "/" + path
    return settings.SITE_URL.rstrip("/") + path
