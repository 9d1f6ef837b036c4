"""Template context for every page: the account the member acts in, and the accounts they can
switch to (the header's switcher shows only when there are two or more)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts import selectors
from shared.auth import acting_of


def team(request: HttpRequest) -> dict[str, Any]:
    acting = acting_of(request)
    if acting is None:
        return {}
    memberships = list(selectors.memberships_of(user=acting.user)[:50])
    return {"acting": acting, "team_switch": memberships if len(memberships) > 1 else []}
