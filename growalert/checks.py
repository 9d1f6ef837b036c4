"""Deploy checks of growalert's own settings (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

W001 = Warning(
    "GROWALERT_SITE_URL is not an https:// URL: links in emails and notifications would use it.",
    hint="Set GROWALERT_SITE_URL to the public https address, e.g. https://alerts.example.com.",
    id="growalert.W001",
)
W002 = Warning(
    "No Content-Security-Policy: CONTENT_SECURITY_POLICY is empty or CSPMiddleware is missing.",
    id="growalert.W002",
)


@register(Tags.security, deploy=True)
def check_site_url(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    return [] if urlsplit(settings.SITE_URL).scheme == "https" else [W001]


@register(Tags.security, deploy=True)
def check_csp(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    policy = getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}
    middleware = bool(
        {"csp.middleware.CSPMiddleware", "growalert.csp.CSPMiddleware"} & set(settings.MIDDLEWARE)
    )
    return [] if policy.get("DIRECTIVES") and middleware else [W002]
