"""Every page passes the Content-Security-Policy, in Debian's chromium: the ``page`` fixture
(tests/pages/conftest.py) records securitypolicyviolation events and "Refused to ..." console
errors on every page a browser test visits; these tests visit each kind of page on purpose, use
its scripts (the editor's live preview, Stripe.js's card field, Swagger UI) and assert that the
browser reported nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from billing import services
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory, UserFactory
from tests.pages.conftest import sign_in
from tests.pages.test_monitors_browser import a_day_with_one_hot_hour
from tests.pages.test_register_browser import choose_plan_and_devices, fill_account

pytestmark = pytest.mark.django_db(transaction=True)


def visit(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None
    assert response.status == 200, f"{path}: HTTP {response.status}"
    assert "default-src 'self'" in response.headers["content-security-policy"], path
    page.wait_for_load_state("networkidle")


def test_the_policy_catches_what_it_should(page, live_server, csp_violations):
    """The watch itself: an inline script, an inline style and a third-party script are reported."""
    visit(page, "/accounts/login/")
    page.evaluate(
        """() => {
        const s = document.createElement("script"); s.textContent = "window.x = 1";
        document.body.appendChild(s);
        const d = document.createElement("div"); d.setAttribute("style", "color: red");
        document.body.appendChild(d);
        const e = document.createElement("script"); e.src = "https://cdn.example.com/x.js";
        document.body.appendChild(e);
      }"""
    )
    page.wait_for_timeout(300)

    found = "\n".join(csp_violations)
    csp_violations.clear()  # the page fixture's own assertion is about the other tests
    assert "script-src-elem blocked inline" in found
    assert "style-src-attr blocked inline" in found
    assert "https://cdn.example.com/x.js" in found


def test_register_and_sign_in_pass_the_policy(
    page, stripe_standin, fake_stripe, alice, csp_violations
):
    visit(page, "/accounts/login/")
    visit(page, "/accounts/password_reset/")
    fill_account(page, "csp@example.com")
    choose_plan_and_devices(page, 1)
    page.get_by_label("Card number").fill("4000 0000 0000 0002")  # declined: stays on the page
    page.locator("#pay").click()
    expect(page.locator("#card-errors")).to_contain_text("Your card was declined.")
    assert stripe_standin.confirmations, "Stripe.js (the stand-in) talked to api.stripe.com"

    page.context.clear_cookies()
    sign_in(page, "alice")

    assert csp_violations == []


def test_signed_in_pages_pass_the_policy(page, alice, influx_db, stripe_standin, csp_violations):
    """alice's pages; the account page with a Stripe customer shows the card field (Stripe.js)."""
    services.customer_ensure(user=alice)
    source = SourceFactory(owner=alice, name="greenhouse influx", database=influx_db.database)
    a_day_with_one_hot_hour(influx_db)
    channel = ChannelFactory(owner=alice, name="farm hook")
    monitor = MonitorFactory(owner=alice, source=source, name="greenhouse-1 too warm")
    monitor.channels.set([channel])
    sign_in(page, "alice")

    for path in ("/app/", f"/app/monitors/{monitor.pk}", "/app/channels", "/app/sources"):
        visit(page, path)
    visit(page, "/app/account")
    expect(page.get_by_label("Card number")).to_be_visible()  # Stripe.js loaded and mounted

    visit(page, "/app/monitors/new")  # the editor with its live preview
    page.get_by_label("Source").select_option(str(source.pk))
    page.get_by_label("Measurement").fill("gro01")
    page.get_by_label("Field").fill("temperature")
    page.get_by_label("Tags").fill("device=greenhouse-1")
    page.get_by_label("Window").fill("5m")
    page.get_by_label("Check every").fill("1m")
    page.get_by_label("Critical threshold").fill("30")
    # a point every 5 minutes leaves some 5 m windows empty: about breaches only, not gaps
    page.get_by_label("When there is no data").select_option("status")
    expect(page.locator("#preview-summary")).to_contain_text("would have fired once")
    expect(page.locator("#preview-chart line.mark-fired")).to_have_count(1)

    for path in ("/monitors", f"/monitors/{monitor.pk}", "/channels", "/sources"):
        visit(page, path)  # the API in a browser: DRF's browsable API

    visit(page, f"/app/monitors/{monitor.pk}")
    page.once("dialog", lambda dialog: dialog.dismiss())  # data-confirm asks; dismissed: kept
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="greenhouse-1 too warm")).to_be_visible()

    assert csp_violations == []


def test_admin_pages_pass_the_policy(page, alice, csp_violations):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    source = SourceFactory(owner=alice)
    MonitorFactory(owner=alice, source=source)
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")

    links = page.locator("#content-main a").evaluate_all("links => links.map(a => a.href)")
    paths = sorted({urlsplit(href).path for href in links})
    assert any(p.endswith("/monitor/") for p in paths), paths
    for path in paths:  # every changelist and add form
        visit(page, path)
    visit(page, "/admin/monitors/monitor/")
    page.locator("#result_list tbody th a").first.click()  # a change form
    page.wait_for_url("**/change/")
    page.wait_for_load_state("networkidle")

    assert csp_violations == []


def test_api_docs_render_offline_under_the_policy(page, live_server, csp_violations):
    """/api/docs with every host but the site blocked: Swagger UI is served by the app."""
    site = urlsplit(live_server.url).netloc
    blocked: list[str] = []

    def only_the_site(route: Route) -> None:
        if urlsplit(route.request.url).netloc == site:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_site)
    visit(page, "/api/docs")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("growalert API")
    operations = page.locator(".opblock-summary-path")
    expect(operations.first).to_be_visible()
    paths: Any = operations.all_inner_texts()
    assert any(p.strip().startswith("/monitors") for p in paths), paths
    assert blocked == []
    assert csp_violations == []
