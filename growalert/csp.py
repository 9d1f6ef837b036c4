"""Content-Security-Policy additions for pages that need more than the site-wide policy.

The policy itself is ``CONTENT_SECURITY_POLICY`` in settings (django-csp's middleware sends it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.middleware import PolicyParts
from django.http import HttpRequest, HttpResponseBase
from rest_framework.renderers import BrowsableAPIRenderer

STRIPE_JS = "https://js.stripe.com"
# What Stripe.js and Elements need (Stripe's CSP guide): the script, its iframes (card fields,
# 3-D Secure challenges), its API calls; the Customer Portal is reached by a form post whose
# answer redirects there.
STRIPE_DIRECTIVES: dict[str, list[str]] = {
    "script-src": [STRIPE_JS, "https://*.js.stripe.com"],
    "frame-src": [SELF, STRIPE_JS, "https://*.js.stripe.com", "https://hooks.stripe.com"],
    "connect-src": ["https://api.stripe.com"],
    "form-action": ["https://billing.stripe.com"],
}


def stripe_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """A page that loads Stripe.js: Stripe's hosts are added to its policy."""
    return csp_update(STRIPE_DIRECTIVES)(view)


# DRF's browsable API (an API URL opened in a browser) writes style="" attributes in its own
# templates; inline style *attributes* are allowed on those answers only (they cannot run
# script). Its <style> element carries the nonce (templates/rest_framework/api.html).
BROWSABLE_API_DIRECTIVES: dict[str, list[str]] = {"style-src-attr": [UNSAFE_INLINE]}


class CSPMiddleware(BaseCSPMiddleware):
    """django-csp's middleware, plus BROWSABLE_API_DIRECTIVES on DRF's HTML answers."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        renderer = getattr(response, "accepted_renderer", None)
        if not report_only and isinstance(renderer, BrowsableAPIRenderer):
            parts.update = {**(parts.update or {}), **BROWSABLE_API_DIRECTIVES}
        return parts
