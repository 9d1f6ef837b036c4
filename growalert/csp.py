"""Content-Security-Policy additions for pages that need more than the site-wide policy.

The policy itself is ``CONTENT_SECURITY_POLICY`` in settings (django-csp's middleware sends it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from csp.constants import SELF
from csp.decorators import csp_update

STRIPE_JS = "https://js.stripe.com"
# What Stripe.js and Elements need (Stripe's CSP guide): the script, its iframes (card fields,
# 3-D Secure challenges), its API calls; the Customer Portal is reached by a form post whose
# answer redirects there.
STRIPE_DIRECTIVES: dict[str, list[str]] = {
    "script-src": [STRIPE_JS],
    "frame-src": [SELF, STRIPE_JS, "https://hooks.stripe.com"],
    "connect-src": ["https://api.stripe.com"],
    "form-action": ["https://billing.stripe.com"],
}


def stripe_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """A page that loads Stripe.js: Stripe's hosts are added to its policy."""
    return csp_update(STRIPE_DIRECTIVES)(view)
