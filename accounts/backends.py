"""Sign-in with the username or the email address.

People registered through /register have their email as username; the demo's and staff's
accounts have a plain username (``admin``). The login form takes either: a username first, as
Django does, then an email address matched case-insensitively — only when exactly one account
has it, so an ambiguous address signs nobody in.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest


class UsernameOrEmailBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None or not username or "@" not in username or password is None:
            return user
        model = get_user_model()
        found = list(model._default_manager.filter(email__iexact=username.strip())[:2])
        if len(found) != 1:
            model().set_password(password)  # same time as a wrong password: no account oracle
            return None
        candidate = found[0]
        if candidate.check_password(password) and self.user_can_authenticate(candidate):
            return candidate
        return None
