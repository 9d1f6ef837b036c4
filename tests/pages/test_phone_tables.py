"""At 390 px the Sources and Channels lists are cards: every action button is on screen, none
behind a sideways scroll (Debian's chromium)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from monitors.models import Channel
from tests.factories import ChannelFactory, SourceFactory
from tests.pages.conftest import sign_in, watch_csp

pytestmark = pytest.mark.django_db(transaction=True)
PHONE = 390


def assert_buttons_in_view(page: Page, rows: str) -> int:
    buttons = page.locator(f"{rows} button")
    assert buttons.count() > 0
    for i in range(buttons.count()):
        button = buttons.nth(i)
        expect(button).to_be_visible()
        box = button.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE, f"{button.inner_text()} is off screen"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE
    overflow = page.evaluate(
        "Math.max(...[...document.querySelectorAll('.table-wrap')]"
        ".map(w => w.scrollWidth - w.clientWidth))"
    )
    assert overflow <= 0, "a table still scrolls sideways"
    return buttons.count()


@pytest.fixture
def phone(browser, live_server, csp_violations):
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": PHONE, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    yield watch_csp(context, csp_violations)
    context.close()
    assert csp_violations == []


def test_sources_are_cards_with_their_buttons_in_view_on_a_phone(phone, alice, screenshot):
    for n in range(2):
        SourceFactory(
            owner=alice,
            name=f"greenhouse influx {n}",
            database="a_rather_long_database_name_for_the_north_greenhouse",
        )
    sign_in(phone, "alice")
    phone.goto("/app/sources")
    assert assert_buttons_in_view(phone, "tr[data-source]") == 6  # check, push, remove
    expect(phone.get_by_role("button", name="Check now greenhouse influx 0")).to_be_visible()
    expect(
        phone.get_by_role("button", name="Push from InfluxDB greenhouse influx 1")
    ).to_be_visible()
    screenshot(phone, "sources-390")


def test_channels_are_cards_with_their_buttons_in_view_on_a_phone(phone, alice, screenshot):
    ChannelFactory(
        owner=alice,
        name="night shift",
        kind=Channel.Kind.EMAIL,
        config={"addresses": ["grower.on.call@example.com", "second.grower@example.com"]},
    )
    ChannelFactory(
        owner=alice,
        name="farm webhook",
        config={"url": "https://hooks.example.com/growalert/a-long-path/with/segments"},
    )
    sign_in(phone, "alice")
    phone.goto("/app/channels")
    assert assert_buttons_in_view(phone, "tr[data-channel]") >= 4
    expect(phone.get_by_role("button", name="Send test to night shift")).to_be_visible()
    screenshot(phone, "channels-390")


def test_on_a_desktop_they_stay_tables(page, alice, screenshot):
    SourceFactory(owner=alice, name="greenhouse influx")
    sign_in(page, "alice")
    page.goto("/app/sources")
    assert page.locator("table.stack thead").evaluate("e => getComputedStyle(e).position") != (
        "absolute"
    )
    screenshot(page, "sources-desktop")
