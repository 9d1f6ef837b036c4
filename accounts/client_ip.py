"""The client's address, for login lock-outs and anonymous throttling.

``REMOTE_ADDR`` unless ``settings.TRUSTED_PROXY_HOPS`` says how many proxies of ours stand in
front of the app: then the address that the outermost of them appended to X-Forwarded-For
(counted from the right; what the client wrote on the left is never believed).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    hops: int = getattr(settings, "TRUSTED_PROXY_HOPS", 0)
    remote = str(request.META.get("REMOTE_ADDR", ""))
    if hops <= 0:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [a for a in forwarded if a]
    return forwarded[-hops] if len(forwarded) >= hops else remote
