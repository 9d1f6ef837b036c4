"""DRF authentication by API token: ``Authorization: Token <token>`` (or ``Bearer``).

One SQL statement finds the token's member, its role in the token's account and the facts
``billing.gating.HasActiveSubscription`` needs (the account holder's); they travel on
``request.auth`` so the permission asks the database nothing more. ``accounts.tenancy`` made the
lookup already (to decide the role) and left it on the request: it is not repeated.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts import acting, selectors, services

KEYWORDS = acting.TOKEN_KEYWORDS


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, selectors.TokenAuth] | None:
        words = get_authorization_header(request).split()
        if not words or words[0].lower() not in KEYWORDS:
            return None  # not ours: session authentication may still answer
        if len(words) != 2:
            raise AuthenticationFailed("Invalid token header: use 'Authorization: Token <token>'.")
        found = acting.token_lookup(request._request)
        if found is None:
            raise AuthenticationFailed("Invalid or revoked token.")
        user, auth = found
        last = auth.last_used_at
        if last is None or timezone.now() - last >= services.LAST_USED_RESOLUTION:
            services.api_token_touch(token_id=auth.token_id)
        if getattr(request._request, "acting", None) is None:  # a view outside the middleware
            request._request.acting = acting.token_acting(request._request)  # type: ignore[attr-defined]
        return user, auth

    def authenticate_header(self, request: Request) -> str:
        return "Token"  # so an unauthenticated request gets 401, not 403
