"""The account page's API tokens in a real browser: create a named token, see it once, use
it, revoke it; the section passes the accessibility audit; and a locked-out sign-in reads
its message on the login page."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.pages.conftest import sign_in
from tests.pages.test_accessibility import audit

pytestmark = pytest.mark.django_db(transaction=True)


def test_alice_creates_uses_and_revokes_a_token_on_the_account_page(
    page, alice, live_server, screenshot
):
    sign_in(page, "alice")
    page.goto("/app/account")
    page.get_by_label("New token's name").fill("grafana")
    page.get_by_role("button", name="Create token").click()

    token = page.get_by_test_id("new-token").inner_text()
    assert re.fullmatch(r"ga_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", token)
    listed = page.get_by_test_id("token-list").inner_text()
    assert "grafana" in listed
    assert token[:11] in listed
    screenshot(page, "created")
    api = httpx.get(f"{live_server.url}/tokens", headers={"Authorization": f"Token {token}"})
    assert api.json()[0]["name"] == "grafana"
    assert audit(page, "/app/account") == []
    assert token not in page.content()  # shown once

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke grafana").click()
    page.wait_for_load_state("networkidle")
    assert "No API tokens yet." in page.content()
    gone = httpx.get(f"{live_server.url}/tokens", headers={"Authorization": f"Token {token}"})
    assert gone.status_code == 401


def test_a_locked_out_sign_in_says_so(page, alice, settings, screenshot):
    settings.AXES_FAILURE_LIMIT = 2
    page.goto("/accounts/login/")
    for _ in range(2):
        page.get_by_label("Email").fill("alice")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Sign in").click()

    message = page.get_by_test_id("locked-out").inner_text()
    screenshot(page, "locked")
    assert "Too many failed sign-ins" in message
