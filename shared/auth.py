"""The tenant behind a request: who acts, in which account, with which role.

``accounts.tenancy`` resolves it (from the session, or from the API token) and leaves an
``Acting`` on the request; the apps below accounts (monitors, billing) read it here, so they need
not import accounts. Rows belong to the account; their column is named ``owner`` for history and
holds the account holder's user id: ``owner_of`` returns that user.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.http import HttpRequest
from rest_framework.request import Request


@dataclass
class Acting:
    """The acting member: ``user`` (the person), in ``account_id`` with ``role``; the account's
    rows are those with ``owner_id == owner_id`` (the account holder)."""

    user: User
    account_id: int
    account_name: str
    role: str
    owner_id: int
    _owner: User | None = field(default=None, repr=False)

    @property
    def owner(self) -> User:
        """The account holder (the user itself for one's own account: no query)."""
        if self._owner is None:
            if self.owner_id == self.user.pk:
                self._owner = self.user
            else:
                self._owner = get_user_model()._default_manager.get(pk=self.owner_id)
        return self._owner


def acting_of(request: HttpRequest | Request) -> Acting | None:
    """The acting membership of an authenticated request (None when anonymous, or when the
    request's user is not the one it was resolved for: never another person's account)."""
    acting = getattr(request, "acting", None)
    if not isinstance(acting, Acting) or acting.user.pk != getattr(request.user, "pk", None):
        return None
    return acting


def owner_of(request: HttpRequest | Request) -> User:
    """The account holder whose rows the request acts on (for views that require
    authentication: never anonymous). Without a resolved membership: the user itself."""
    acting = acting_of(request)
    if acting is not None:
        return acting.owner
    user = request.user
    assert isinstance(user, User)
    return user
