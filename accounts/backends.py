"""Sign-in with the email address as well as the username.

People registered through /register have their email as username; the demo's and staff's
accounts have a plain username (``admin``). Django's ModelBackend tries the username first;
this backend, after it, matches an address case-insensitively — only when exactly one account
has it, so an ambiguous address signs nobody in. A wrong password typed with a username costs
no second hash here (the name has no ``@``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.http import HttpRequest


class EmailBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        address = username
        if not address or "@" not in address or password is None:
            return None
        found = list(User._default_manager.filter(email__iexact=address.strip())[:2])
        if len(found) != 1:
            User().set_password(password)  # as long as a wrong password: no account oracle
            return None
        user = found[0]
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
