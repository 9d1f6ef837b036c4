"""Issue 20, round two, in Debian's chromium at desktop and phone widths: values with units
and true status sentences, silences from the monitor page, form errors in plain words next to
the field. Screenshots land in .local/test-artifacts/pages/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

import alerts_core as ac
from monitors import display
from monitors.models import Monitor, Notification, Silence
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory
from tests.pages.conftest import sign_in, watch_csp

pytestmark = pytest.mark.django_db(transaction=True)

WIDTHS = {"desktop": {"width": 1100, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=list(WIDTHS))
def sized(request, browser, live_server, csp_violations):
    """A page at desktop or phone width (CSP violations fail the test, as for ``page``)."""
    phone = request.param == "phone"
    context = browser.new_context(
        base_url=live_server.url, viewport=WIDTHS[request.param], is_mobile=phone
    )
    context.set_default_timeout(15_000)
    page = watch_csp(context, csp_violations)
    page.width_name = request.param  # type: ignore[attr-defined]
    yield page
    context.close()
    assert csp_violations == []


def no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTHS[page.width_name]["width"], "the page scrolls sideways"


def soil_monitor(owner, **fields) -> Monitor:
    source = SourceFactory(owner=owner, name="bench influx")
    values = {
        "owner": owner,
        "source": source,
        "name": "Bench 3 soil",
        "measurement": "soil",
        "field": "moisture",
        "comparator": "below",
        "critical": 20,
        "unit": "%",
        "precision": 0,
        "window": timedelta(minutes=5),
        "interval": timedelta(minutes=1),
        "pending_for": 3,
    }
    return MonitorFactory(**(values | fields))


def test_values_carry_units_and_statuses_say_the_whole_truth(sized, alice, screenshot):
    fresh = soil_monitor(alice)
    sign_in(sized, "alice")

    card = sized.locator(f'.monitor-card[data-monitor="{fresh.pk}"]')
    expect(card.locator(".status").first).to_have_text("Not evaluated yet")
    expect(card).not_to_contain_text("OK")
    screenshot(sized, f"{sized.width_name}-not-evaluated")

    now = timezone.now()
    Monitor.objects.filter(pk=fresh.pk).update(
        status="pending",
        state=ac.MonitorState(status=ac.Status.PENDING, failures=1, since=now).to_dict(),
        last_value=14.2871,
        last_evaluated_at=now,
        status_changed_at=now,
        status_reason="14 % is below 20 % (critical)",
    )
    sized.reload()
    expect(card).to_contain_text("Last value 14 %")
    expect(card).to_contain_text("Pending: fires at")
    expect(card).to_contain_text("if still below 20 % (now 14 %) — 2 more failing checks")

    card.get_by_role("link", name="Bench 3 soil").click()
    expect(sized.get_by_test_id("status")).to_have_text("Pending")
    expect(sized.get_by_test_id("last-value")).to_have_text("14 %")
    definition = sized.get_by_test_id("definition")
    expect(definition).to_contain_text("over 5 min, fires below 20 %")
    expect(definition).to_contain_text("checked every 1 min")
    expect(definition).to_contain_text("after failing for 2 min (3 checks in a row)")
    expect(definition).not_to_contain_text("0:0")
    expect(sized.get_by_test_id("notifies")).to_contain_text("Notifies: nobody")
    screenshot(sized, f"{sized.width_name}-pending")
    no_sideways_scroll(sized)


def test_a_monitor_is_silenced_from_its_page_shown_everywhere_and_ended_early(
    sized, alice, screenshot
):
    monitor = soil_monitor(alice)
    monitor.channels.set([ChannelFactory(owner=alice, name="bench phone")])
    sign_in(sized, "alice")
    sized.goto(f"/app/monitors/{monitor.pk}")
    expect(sized.get_by_test_id("notifies")).to_contain_text("bench phone (Webhook)")

    sized.get_by_text("Silence this monitor…").click()
    sized.get_by_label("Silence for").fill("5m")
    sized.get_by_label("Until").fill("2030-01-01T10:00")
    sized.get_by_role("button", name="Silence", exact=True).click()
    expect(sized.get_by_text("Give either how long (e.g. 2h) or until when")).to_be_visible()

    sized.get_by_label("Until").fill("")
    sized.get_by_label("Silence for").fill("2h")
    sized.get_by_label("Reason").fill("re-potting bench 3")
    sized.get_by_role("button", name="Silence", exact=True).click()

    silence = Silence.objects.get(monitor=monitor)
    ends = display.clock(silence.ends_at)  # "10:13" today, "3 Dec 00:13" past midnight
    expect(sized.get_by_test_id("silenced")).to_have_text(f"Silenced until {ends}")
    expect(sized.locator("#silences")).to_contain_text("re-potting bench 3")
    screenshot(sized, f"{sized.width_name}-silenced")
    no_sideways_scroll(sized)

    sized.goto("/app/")
    card = sized.locator(f'.monitor-card[data-monitor="{monitor.pk}"]')
    expect(card.get_by_test_id("silenced")).to_have_text(f"Silenced until {ends}")

    card.get_by_role("link", name="Bench 3 soil").click()
    sized.get_by_role("button", name="End now").click()
    expect(sized.get_by_text("Silence ended")).to_be_visible()
    expect(sized.get_by_test_id("silenced")).to_have_count(0)
    silence.refresh_from_db()
    assert silence.ends_at <= timezone.now()

    # a maintenance window every night from 02:00 to 03:00
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    sized.get_by_text("Silence this monitor…").click()
    sized.get_by_label("Starting").fill(f"{tomorrow}T02:00")
    sized.get_by_label("Silence for").fill("1h")
    sized.get_by_label("Every day at this time").check()
    sized.get_by_label("Reason").fill("nightly irrigation flush")
    sized.get_by_role("button", name="Silence", exact=True).click()
    expect(sized.get_by_text("is silenced every day from 02:00 to 03:00")).to_be_visible()
    window = sized.locator("#silences li", has_text="nightly irrigation flush")
    expect(window).to_contain_text("every day from 02:00 to 03:00")
    assert Silence.objects.get(daily=True).reason == "nightly irrigation flush"
    screenshot(sized, f"{sized.width_name}-daily-window")


def test_what_a_silence_held_back_is_in_the_monitors_log(sized, alice):
    monitor = soil_monitor(alice)
    channel = ChannelFactory(owner=alice, name="bench phone")
    Notification.objects.create(
        monitor=monitor,
        channel=channel,
        event="fired",
        idempotency_key="m1:v1:fired:c1:held",
        status=Notification.DeliveryStatus.SUPPRESSED,
        last_error="silenced until 2026-12-02 14:30",
    )
    sign_in(sized, "alice")
    sized.goto(f"/app/monitors/{monitor.pk}")
    held = sized.get_by_test_id("suppressed")
    expect(held).to_contain_text("Not sent: silenced")
    expect(held).to_contain_text("silenced until 2026-12-02 14:30")


def test_a_private_webhook_address_is_explained_next_to_the_field(sized, alice, screenshot):
    sign_in(sized, "alice")
    sized.goto("/app/channels")
    sized.get_by_label("Kind").select_option("webhook")
    help_items = sized.locator("#kind-help li:visible")
    expect(help_items).to_have_count(1)
    expect(help_items).to_contain_text("public address")

    sized.get_by_label("Name").fill("greenhouse pi")
    sized.get_by_label("Send to").fill("http://127.0.0.1:8000/hook")
    sized.get_by_role("button", name="Add channel").click()

    error = sized.locator("#id_target_error")
    expect(error).to_contain_text("Resolves to a private address (127.0.0.1).")
    expect(error).to_contain_text("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES=true")
    expect(error).not_to_contain_text("ErrorDetail")
    screenshot(sized, f"{sized.width_name}-private-address")

    sized.get_by_label("Kind").select_option("email")
    sized.get_by_label("Send to").fill("grower@example.com, bench@")
    sized.get_by_role("button", name="Add channel").click()
    expect(sized.locator("#id_target_error")).to_have_text(
        "The address “bench@” is not a valid email address."
    )
    expect(sized.locator("#kind-help li:visible")).to_contain_text("separated by commas")
    no_sideways_scroll(sized)
