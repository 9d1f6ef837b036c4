"""Pages show each role only the forms it can use: every form (and button ``formaction``) on
every page a role opens posts to a URL the permission table lets that role write, and the live
answers (cached for all of an account's tabs) are cached per role, so a viewer's tab never gets
the buttons an admin's tab was rendered with, nor the other way round."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import resolve

from accounts import permissions
from accounts.acting import SESSION_ACCOUNT_KEY
from tests.accounts.team_world import ROLES, World, make_world
from tests.accounts.test_permission_matrix import URLS, _path

pytestmark = pytest.mark.django_db

PAGES = (
    "pages:dashboard",
    "pages:monitor",
    "pages:incident",
    "pages:channels",
    "pages:channel",
    "pages:sources",
    "pages:devices",
    "pages:device",
    "pages:escalation",
    "pages:account",
    "pages:team",
)
PATTERNS = dict(URLS)


class PostTargets(HTMLParser):
    """Where the page's POST forms and their ``formaction`` buttons send."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and (found.get("method") or "").lower() == "post":
            self.targets.append(found.get("action") or self.page)
        elif tag == "button" and found.get("formaction"):
            self.targets.append(str(found["formaction"]))


def signed_in(world: World, role: str) -> Client:
    client = Client()
    client.force_login(world.people[role])
    session = client.session
    session[SESSION_ACCOUNT_KEY] = world.account.pk
    session.save()
    return client


def posts_of(client: Client, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, path
    parser = PostTargets(path)
    parser.feed(response.content.decode())
    return [resolve(urlsplit(target).path).view_name for target in parser.targets]


@pytest.fixture
def north() -> World:
    return make_world("north")


@pytest.mark.parametrize("role", ROLES)
def test_every_form_a_role_is_shown_is_one_it_may_use(north: World, role: str) -> None:
    client = signed_in(north, role)
    shown: dict[str, list[str]] = {}
    for page in PAGES:
        path = _path(page, PATTERNS[page], north, role)
        assert path is not None
        shown[page] = posts_of(client, path)

    refused = [
        f"{page}: a form to {name}"
        for page, names in shown.items()
        for name in names
        if not permissions.may(role, name)
    ]
    assert refused == []
    everything = {name for names in shown.values() for name in names}
    expected: dict[str, set[str]] = {
        "viewer": {"pages:account-switch", "pages:profile", "pages:team-leave"},
        "member": {"pages:monitor-toggle", "pages:incident-acknowledge", "pages:token-create"},
        "admin": {"pages:sources", "pages:device-key", "pages:team-invite"},
        "owner": {"pages:monitor-delete", "pages:escalation-delete", "pages:channels"},
    }
    assert expected[role] - everything == set()  # and what it may use is there
    if role == "viewer":
        assert not everything & {"pages:monitor-toggle", "pages:channels", "pages:silence-end"}


def live_html(client: Client, path: str) -> str:
    response = client.get(path, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return str(answer["html"])


def test_a_live_answer_is_cached_per_role(north: World) -> None:
    path = f"/app/live/monitors/{north.ids['monitor']}/incidents/{north.ids['incident']}"
    member, viewer = signed_in(north, "member"), signed_in(north, "viewer")
    acknowledge = f"/app/incidents/{north.ids['incident']}/acknowledge"

    assert acknowledge in live_html(member, path)  # rendered and cached for members first
    assert acknowledge not in live_html(viewer, path)  # not the member's copy
    assert acknowledge in live_html(member, path)
