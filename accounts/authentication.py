"""DRF authentication by API token: ``Authorization: Token <token>`` (or ``Bearer``).

One SQL statement finds the token's user and the facts ``billing.gating.HasActiveSubscription``
needs; they travel on ``request.auth`` so the permission asks the database nothing more.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts import selectors, services, tokens

KEYWORDS = (b"token", b"bearer")


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, selectors.TokenAuth] | None:
        words = get_authorization_header(request).split()
        if not words or words[0].lower() not in KEYWORDS:
            return None  # not ours: session authentication may still answer
        if len(words) != 2:
            raise AuthenticationFailed("Invalid token header: use 'Authorization: Token <token>'.")
        presented = tokens.parse(words[1].decode("latin-1"))
        found = selectors.api_token_user(presented) if presented else None
        if found is None:
            raise AuthenticationFailed("Invalid or revoked token.")
        user, auth = found
        last = auth.last_used_at
        if last is None or timezone.now() - last >= services.LAST_USED_RESOLUTION:
            services.api_token_touch(token_id=auth.token_id)
        return user, auth

    def authenticate_header(self, request: Request) -> str:
        return "Token"  # so an unauthenticated request gets 401, not 403
