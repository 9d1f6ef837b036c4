"""Error reports to Sentry (``SENTRY_DSN``): unhandled exceptions of the web, the workers and
beat, and ERROR log lines, with the request or task they happened in. Never with secrets:
``send_default_pii`` is off, no request bodies or local variables are sent, and ``scrub``
(the ``before_send`` and ``before_breadcrumb`` hook) removes what could still carry one, by key
(headers, cookies, form and JSON fields, extras) and by value (API tokens, Stripe keys, Slack
webhook URLs, card numbers, credentials in URLs and query strings).

Without a DSN nothing here runs and sentry_sdk is not imported.
"""

from __future__ import annotations

import re
from typing import Any

FILTERED = "[Filtered]"

# Keys whose value is dropped wherever they appear (headers, cookies, data, extras, contexts).
SECRET_KEY = re.compile(
    r"auth|cookie|token|secret|passw|pwd|api[-_]?key|signature|csrf|session|card|cvc|cvv"
    r"|\bpan\b|dsn|webhook|private|credential|ciphertext|otp|verification_code|x[-_]signature",
    re.IGNORECASE,
)
# Values replaced wherever they appear in a string (a message, an exception, a URL).
SECRET_VALUES = (
    re.compile(r"\bga_[A-Za-z0-9_\-]{6,}"),  # growalert API tokens
    re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{6,}"),  # Stripe keys
    re.compile(r"\bwhsec_[A-Za-z0-9]{6,}"),  # Stripe webhook secrets
    re.compile(r"https?://hooks\.slack\.com/[^\s\"'<>]*", re.IGNORECASE),  # Slack webhooks
    re.compile(r"(?i)\b(?:bearer|basic|token)\s+[A-Za-z0-9._~+/=\-]{6,}"),  # credentials
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),  # user:password@ in URLs
    re.compile(  # key=value pairs of a query string or a log line
        r"(?i)(?<![^?&;\s])(?:[a-z_\-]*(?:token|secret|passw|key|signature|sig|auth))=[^&\s]+"
    ),
    re.compile(r"\b(?:\d[ -]?){13,19}\b"),  # card numbers
)


def _scrub_string(value: str) -> str:
    for pattern in SECRET_VALUES:
        value = pattern.sub(FILTERED, value)
    return value


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 30:
        return FILTERED
    if isinstance(value, str):
        return _scrub_string(value)
    if isinstance(value, dict):
        return {
            key: FILTERED
            if isinstance(key, str) and SECRET_KEY.search(key)
            else _scrub(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        scrubbed = [_scrub(item, depth + 1) for item in value]
        # headers may arrive as [name, value] pairs
        if len(scrubbed) == 2 and isinstance(value[0], str) and SECRET_KEY.search(value[0]):
            return [value[0], FILTERED]
        return scrubbed
    return value


def scrub(event: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    """Sentry's before_send / before_breadcrumb: the event without anything secret."""
    scrubbed: dict[str, Any] = _scrub(event)
    request = scrubbed.get("request")
    if isinstance(request, dict):
        request.pop("data", None)  # bodies hold passwords, card data, webhook secrets
        request.pop("cookies", None)
    return scrubbed


def init(*, dsn: str, environment: str, release: str | None, sample_rate: float = 1.0) -> None:
    """Called once per process by the settings when SENTRY_DSN is set."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        sample_rate=sample_rate,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=None,  # traces are OpenTelemetry's (observability.tracing)
        auto_enabling_integrations=False,
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(monitor_beat_tasks=False, propagate_traces=False),
        ],
        before_send=scrub,  # type: ignore[arg-type]
        before_breadcrumb=scrub,
    )
