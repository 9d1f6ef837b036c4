"""Escalation and acknowledgement pages in a real browser (Debian chromium), at desktop and
phone widths, each passing the accessibility audit (axe-core and our own checks): the policy
page adds a policy with two steps and says what is wrong in sentences; the incident page shows
its timeline and acknowledges with its button, then says who; the one-click link's page
confirms without signing in, and a forged link says so."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from monitors.models import EscalationPolicy, Incident, Notification
from monitors.notify import acknowledge
from tests.factories import ChannelFactory, MonitorFactory
from tests.pages.conftest import sign_in, watch_csp
from tests.pages.test_accessibility import AUDIT, audit, axe_violations

pytestmark = pytest.mark.django_db(transaction=True)
WIDTHS = [1100, 390]


def open_page(browser, live_server, csp_violations, width):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}, is_mobile=width < 500
    )
    context.set_default_timeout(15_000)
    return context, watch_csp(context, csp_violations)


def audit_here(page, what):
    """The accessibility audit of the page as it is now (after a POST: ``audit`` loads a
    path afresh)."""
    return [f"{what}: {p}" for p in page.evaluate(AUDIT)] + axe_violations(page, what)


def fits_the_screen(page, width):
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide on a {width} px screen"


@pytest.mark.parametrize("width", WIDTHS)
def test_a_policy_with_two_steps_is_added_and_mistakes_read_as_sentences(
    browser, live_server, alice, csp_violations, screenshot, width
):
    first = ChannelFactory(owner=alice, name="Alice SMS")
    second = ChannelFactory(owner=alice, name="Night phone")
    context, page = open_page(browser, live_server, csp_violations, width)
    sign_in(page, "alice")
    page.goto("/app/escalation")
    expect(page.get_by_text("No policies yet.")).to_be_visible()

    page.get_by_role("textbox", name="Name").fill("night shift")
    page.get_by_label("Step 1: after (minutes unacknowledged)").fill("0")
    page.get_by_label("Step 2: after (minutes unacknowledged)").fill("30")
    page.get_by_role("button", name="Add policy").click()
    expect(page.get_by_text("Escalate after 1 minute at least.")).to_be_visible()
    assert audit_here(page, "/app/escalation (errors)") == []
    screenshot(page, f"errors-{width}")

    page.get_by_label("Step 1: after (minutes unacknowledged)").fill("10")
    page.locator(f"input[name=step0_channels][value='{first.pk}']").check()
    page.get_by_role("button", name="Add policy").click()
    expect(
        page.get_by_text("Step 2: choose at least one channel or member to notify.")
    ).to_be_visible()

    page.locator(f"input[name=step0_channels][value='{first.pk}']").check()
    page.locator(f"input[name=step1_channels][value='{second.pk}']").check()
    page.get_by_label("Repeat the last step every (minutes)").fill("15")
    page.get_by_role("button", name="Add policy").click()
    expect(page.get_by_text("Escalation policy “night shift” saved.")).to_be_visible()
    listed = page.locator("[data-policy]")
    expect(listed.locator("ol > li")).to_have_text(
        ["after 10 min unacknowledged: Alice SMS", "after 30 min unacknowledged: Night phone"]
    )
    expect(listed).to_contain_text("Then the last step every 15 min")
    fits_the_screen(page, width)
    assert audit(page, "/app/escalation") == []
    screenshot(page, f"saved-{width}")
    context.close()
    policy = EscalationPolicy.objects.get(owner=alice)
    assert [s.after_minutes for s in policy.steps.order_by("position")] == [10, 30]
    assert csp_violations == []


def an_escalated_incident(alice):
    monitor = MonitorFactory(owner=alice, name="greenhouse too hot", status="firing")
    opened = timezone.now() - timedelta(minutes=20)
    incident = Incident.objects.create(monitor=monitor, opened_at=opened, summary="31 °C")
    hook = ChannelFactory(owner=alice, name="Ops hook")
    for event, minutes, payload in [
        ("fired", 0, {}),
        ("escalated", 10, {"escalation": {"policy": "night shift", "step": 1, "repeat": 0}}),
    ]:
        Notification.objects.create(
            monitor=monitor,
            incident=incident,
            channel=hook,
            event=event,
            idempotency_key=f"{event}-{incident.pk}",
            payload=payload,
            status="sent",
            created_at=opened + timedelta(minutes=minutes),
        )
    return incident, hook


@pytest.mark.parametrize("width", WIDTHS)
def test_the_incident_page_shows_its_timeline_and_acknowledges_with_its_button(
    browser, live_server, alice, csp_violations, screenshot, width
):
    incident, _ = an_escalated_incident(alice)
    context, page = open_page(browser, live_server, csp_violations, width)
    sign_in(page, "alice")
    page.goto(f"/app/incidents/{incident.pk}")
    timeline = page.locator("ol.timeline > li")
    expect(timeline).to_have_count(3)
    expect(timeline.nth(0)).to_contain_text("Fired: 31 °C")
    expect(timeline.nth(1)).to_contain_text("Fired → Ops hook (Webhook)")
    expect(timeline.nth(2)).to_contain_text("Escalated: step 1 of night shift → Ops hook")
    expect(timeline.nth(2)).to_contain_text("Sent")
    fits_the_screen(page, width)
    assert audit(page, f"/app/incidents/{incident.pk}") == []
    screenshot(page, f"open-{width}")

    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("Acknowledged: escalation and repeats are stopped.")).to_be_visible()
    expect(page.locator("[data-acknowledged]")).to_contain_text(
        "Acknowledged by alice via the incident page"
    )
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(page.locator("ol.timeline > li[data-kind=acknowledged]")).to_contain_text(
        "Acknowledged by alice via the incident page"
    )
    assert audit(page, f"/app/incidents/{incident.pk}") == []
    screenshot(page, f"acknowledged-{width}")
    context.close()
    incident.refresh_from_db()
    assert incident.acknowledged_by == alice
    assert csp_violations == []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_link_page_confirms_without_signing_in_and_refuses_a_forged_link(
    browser, live_server, alice, csp_violations, screenshot, width
):
    incident, hook = an_escalated_incident(alice)
    token = acknowledge.link_token(incident.pk, hook.pk)
    context, page = open_page(browser, live_server, csp_violations, width)
    page.goto(f"/ack/{token}")  # not signed in
    expect(page.get_by_text("greenhouse too hot")).to_be_visible()
    incident.refresh_from_db()
    assert incident.acknowledged_at is None  # showing the page acknowledges nothing
    fits_the_screen(page, width)
    assert audit(page, f"/ack/{token}") == []
    screenshot(page, f"confirm-{width}")

    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_have_text(
        "Acknowledged. Escalation and repeats are stopped."
    )
    assert audit_here(page, "/ack/<token> (done)") == []
    screenshot(page, f"done-{width}")
    page.goto(f"/ack/{token}")
    expect(page.get_by_role("status")).to_have_text(
        "Already acknowledged by a link sent to Ops hook via a link in a notification."
    )

    page.goto(f"/ack/{token[:-4]}AAAA")
    expect(page.get_by_role("alert")).to_have_text("This link is not valid.")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    assert audit(page, f"/ack/{token[:-4]}AAAA") == []
    screenshot(page, f"forged-{width}")
    context.close()
    assert csp_violations == []
