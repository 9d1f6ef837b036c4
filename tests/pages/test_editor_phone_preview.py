"""The monitor editor on a 390 px phone: the preview is reachable without scrolling past the
whole form — a bar at the top (and still in view while the form scrolls) links to it, and the
preview links back to the form. At desktop width the preview sits beside the form and the bar
is not shown. Debian's chromium; axe-core passes at both widths."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import SourceFactory
from tests.pages.conftest import sign_in, watch_csp
from tests.pages.test_accessibility import axe_violations

pytestmark = pytest.mark.django_db(transaction=True)


def in_view(page, locator) -> bool:
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def test_on_a_phone_the_preview_is_one_tap_away_from_anywhere_in_the_form(
    browser, live_server, alice, screenshot, csp_violations
):
    SourceFactory(owner=alice)
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    page = watch_csp(context, csp_violations)
    sign_in(page, "alice")
    page.goto("/app/monitors/new")
    jump = page.get_by_test_id("preview-jump")
    heading = page.get_by_role("heading", name="Preview: the last 24 hours")
    expect(jump).to_be_visible()
    assert in_view(page, jump)
    assert not in_view(page, heading)  # the form comes first on a phone
    screenshot(page, "top-390")

    page.get_by_label("Threshold").first.scroll_into_view_if_needed()  # deep in the form
    assert in_view(page, jump)  # the bar stays at the top of the screen
    jump.tap()
    expect(heading).to_be_in_viewport()
    assert in_view(page, heading)  # not hidden under the bar
    page.get_by_role("link", name="Back to the form ↑").tap()
    expect(page.get_by_label("Name")).to_be_in_viewport()
    assert axe_violations(page, "/app/monitors/new at 390 px") == []
    context.close()
    assert csp_violations == []


def test_at_desktop_width_the_preview_is_beside_the_form_and_the_bar_hidden(
    page, alice, screenshot
):
    SourceFactory(owner=alice)
    sign_in(page, "alice")
    page.goto("/app/monitors/new")
    expect(page.get_by_test_id("preview-jump")).to_be_hidden()
    expect(page.get_by_role("heading", name="Preview: the last 24 hours")).to_be_in_viewport()
    assert axe_violations(page, "/app/monitors/new") == []
    screenshot(page, "desktop")
