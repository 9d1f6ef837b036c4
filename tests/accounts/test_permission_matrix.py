"""Every role x every API endpoint and page x three accounts, generated from the URL
resolver: a URL without a declared policy (accounts/permissions.py) fails here.

Per role, one test walks every URL with each method its view answers: the API with the role's
API token, the pages with a session. A role below the declared one gets 403 (JSON with the
reason on the API); a role at or above it never gets 403 (nor a server error). Then every URL
that names an object, with the ids of the two other accounts: 404 for every role.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from accounts import permissions
from accounts.acting import SESSION_ACCOUNT_KEY
from accounts.models import RANK, Role
from tests.accounts.team_world import ROLES, World, make_world

pytestmark = pytest.mark.django_db

# Last, in this order: they end what the others need (the session, the membership).
LAST = ("account-member", "pages:team-member-remove", "pages:team-leave")


def _walk(resolver: URLResolver, namespace: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                continue
            inner = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
            found += _walk(pattern, inner)
        elif pattern.name:
            found.append((namespace + pattern.name, pattern))
    return found


URLS = _walk(get_resolver())
NAMES = {name for name, _ in URLS}


def _methods(pattern: URLPattern) -> list[str]:
    callback = pattern.callback
    actions = getattr(callback, "actions", None)
    if actions:  # a viewset route: exactly its methods
        return [m.upper() for m in actions]
    cls = getattr(callback, "cls", None)
    if cls is not None:
        return [m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)]
    return ["GET", "POST"]  # a page: the middleware decides before the view either way


ID_OF = {  # URL keyword -> World.ids key (pk: by the URL name's first word)
    "monitor_id": "monitor",
    "source_id": "source",
    "channel_id": "channel",
    "policy_id": "policy",
    "incident_id": "incident",
    "silence_id": "silence",
    "device_id": "device",
    "member_id": "member",
    "invitation_id": "invitation",
}
PK_OF = {
    "monitor": "monitor",
    "source": "source",
    "channel": "channel",
    "incident": "incident",
    "silence": "silence",
    "escalation": "policy",
}


def _path(name: str, pattern: URLPattern, world: World, role: str) -> str | None:
    """The URL with ``world``'s rows in it; None if it names something that is not a row."""
    kwargs: dict[str, Any] = {}
    for key in pattern.pattern.regex.groupindex:
        if key == "pk":
            kwargs[key] = world.ids[PK_OF[name.split("-")[0]]]
        elif key == "token_id":
            kwargs[key] = world.ids["token"][role]
        elif key in ID_OF:
            kwargs[key] = world.ids[ID_OF[key]]
        elif key in ("customer_id", "subscription_id"):
            kwargs[key] = "cus_none" if key == "customer_id" else "sub_none"
        else:
            return None
    from django.urls import reverse

    return reverse(name, kwargs=kwargs)


@pytest.fixture
def worlds() -> list[World]:
    return [make_world(name) for name in ("north", "south", "east")]


def test_every_url_has_a_declared_policy() -> None:
    undeclared = sorted(NAMES - permissions.PUBLIC - set(permissions.POLICY))
    stale = sorted((permissions.PUBLIC | set(permissions.POLICY)) - NAMES)
    assert undeclared == [], "declare these in accounts/permissions.py"
    assert stale == [], "these names are no URL any more"


def _ordered() -> list[tuple[str, URLPattern]]:
    checked = [(n, p) for n, p in URLS if n not in permissions.PUBLIC]
    rank = {name: i for i, name in enumerate(LAST)}
    return sorted(checked, key=lambda item: rank.get(item[0], -1))


def _client(name: str, world: World, role: str) -> Client:
    if name.startswith("pages:"):
        client = Client()
        client.force_login(world.people[role])
        session = client.session
        session[SESSION_ACCOUNT_KEY] = world.account.pk  # the switcher: act in this account
        session.save()
        return client
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens[role]}")
    return api


def _send(client: Client, method: str, path: str) -> Any:
    extra = {"HTTP_ACCEPT": "application/json"} if not path.startswith("/app") else {}
    return getattr(client, method.lower())(path, data={}, content_type="application/json", **extra)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_what_the_table_allows(worlds: list[World], role: str) -> None:
    north = worlds[0]
    clients: dict[bool, Client] = {}
    wrong = []
    for name, pattern in _ordered():
        path = _path(name, pattern, north, role)
        assert path is not None, name
        page = name.startswith("pages:")
        client = clients.setdefault(page, _client(name, north, role))
        for method in _methods(pattern):
            least = permissions.required_role(name, method)
            assert least is not None
            allowed = RANK[Role(role)] >= RANK[least]
            response = _send(client, method, path)
            got = response.status_code
            if allowed and got in (403, 500):  # 502/503: Stripe or a source unreachable
                wrong.append(f"{role} {method} {path}: {got}, expected to be let through")
            elif not allowed and got != 403:
                wrong.append(f"{role} {method} {path}: {got}, expected 403")
            elif not allowed and not page and role not in response.json()["detail"]:
                wrong.append(f"{role} {method} {path}: the 403 does not say why")
    print("\n".join(wrong))
    assert wrong == []


@pytest.mark.parametrize("role", ROLES)
def test_rows_of_other_accounts_are_not_found_for_any_role(worlds: list[World], role: str) -> None:
    north, *others = worlds
    wrong = []
    for name, pattern in _ordered():
        keys = set(pattern.pattern.regex.groupindex)
        if not keys & (set(ID_OF) | {"pk"}):
            continue  # names no row of an account
        page = name.startswith("pages:")
        client = _client(name, north, role)
        for other in others:
            path = _path(name, pattern, other, role)
            assert path is not None
            for method in _methods(pattern):
                least = permissions.required_role(name, method)
                assert least is not None
                if RANK[Role(role)] < RANK[least]:
                    continue  # refused before any row is looked at (the test above)
                got = _send(client, method, path).status_code
                if got not in (404, 405) or (got == 405 and not page):
                    wrong.append(f"{role} {method} {path} of {other.account.name}: {got}")
    print("\n".join(wrong))
    assert wrong == []
