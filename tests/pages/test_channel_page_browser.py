"""A channel's own page in Debian's chromium, at desktop and phone widths: its message
templates previewed with the account's latest real alert (a sample when there is none) before
saving, a bad template as a form error in plain words, saving, and "default for new monitors"
ticking the channel in a new monitor's editor. axe-core passes on the page."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from monitors.models import Channel, Notification
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory
from tests.notify import conftest as notify_fixtures
from tests.notify.test_delivery import PAYLOAD
from tests.pages.conftest import sign_in, watch_csp
from tests.pages.test_accessibility import audit, axe_violations

pytestmark = pytest.mark.django_db(transaction=True)
smtp_inbox = notify_fixtures.smtp_inbox  # the real SMTP sink (aiosmtpd on loopback)


def a_past_alert(channel: Channel) -> Notification:
    monitor = MonitorFactory(owner=channel.owner, name="greenhouse too hot")
    return Notification.objects.create(
        channel=channel,
        monitor=monitor,
        event="fired",
        idempotency_key=f"m{monitor.pk}:v{uuid.uuid4().hex[:6]}:fired:c{channel.pk}",
        payload={
            **PAYLOAD,
            "monitor": {"id": monitor.pk, "name": monitor.name, "url": "http://testserver/"},
        },
        status=Notification.DeliveryStatus.SENT,
    )


@pytest.mark.parametrize("width", [1100, 390])
def test_templates_are_previewed_with_a_real_alert_checked_and_saved(
    browser, live_server, alice, screenshot, csp_violations, width
):
    channel = ChannelFactory(
        owner=alice, name="night shift", kind="email", config={"addresses": ["n@example.com"]}
    )
    a_past_alert(channel)
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}, is_mobile=width < 500
    )
    page = watch_csp(context, csp_violations)
    sign_in(page, "alice")
    page.goto("/app/channels")
    page.get_by_role("link", name="night shift").click()
    expect(page.get_by_role("heading", name="night shift")).to_be_visible()
    expect(page.get_by_test_id("preview-from")).to_contain_text(
        "With your latest alert: greenhouse too hot — FIRING, 2026-11-24 09:00 UTC"
    )
    expect(page.get_by_test_id("preview-subject")).to_have_text("[FIRING] greenhouse too hot")

    page.get_by_label("Subject").fill("{event} {monitor}: {value}")
    page.get_by_label("Body").fill("{monitor} is {value} on {tags.device} since {since}")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-subject")).to_have_text(
        "FIRING greenhouse too hot: 41.2 °C"
    )
    expect(page.get_by_test_id("preview-body")).to_have_text(
        "greenhouse too hot is 41.2 °C on greenhouse-1 since 2026-11-24 08:58 UTC"
    )
    channel.refresh_from_db()
    assert channel.body_template == ""  # a preview saves nothing

    page.get_by_label("Body").fill("{monitor} is {valeu}")
    page.get_by_role("button", name="Save messages").click()
    error = page.locator("#message-form .errorlist")
    expect(error).to_contain_text("{valeu} is not a variable. The variables are: {monitor}")
    expect(page.get_by_label("Body")).to_have_attribute("aria-invalid", "true")
    assert axe_violations(page, "channel page with an error") == []
    screenshot(page, f"error-{width}")

    page.get_by_label("Body").fill("{monitor} is {value} on {tags.device}")
    page.get_by_role("button", name="Save messages").click()
    expect(page.locator(".messages")).to_contain_text("The messages of “night shift” are saved.")
    channel.refresh_from_db()
    assert channel.subject_template == "{event} {monitor}: {value}"
    assert channel.body_template == "{monitor} is {value} on {tags.device}"
    expect(page.get_by_test_id("preview-body")).to_have_text(
        "greenhouse too hot is 41.2 °C on greenhouse-1"
    )
    if width < 500:  # the form and its preview fit the phone: nothing scrolls sideways
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"saved-{width}")
    context.close()
    assert csp_violations == []


def test_without_any_alert_the_preview_uses_a_sample(page, alice, screenshot):
    channel = ChannelFactory(
        owner=alice,
        name="team slack",
        kind="slack",
        config={"url": "https://hooks.slack.com/services/T/B/x"},
    )
    sign_in(page, "alice")
    page.goto(f"/app/channels/{channel.pk}")
    expect(page.get_by_test_id("preview-from")).to_have_text(
        "With a sample alert (you have had none yet)."
    )
    page.get_by_label("Body").fill("*{monitor}* <{link}|open> {value}")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-body")).to_contain_text("*Bench 3 soil* <")
    expect(page.get_by_test_id("preview-body")).to_contain_text("|open> 14 %")
    screenshot(page, "sample")


def test_a_webhook_channel_previews_the_message_field(page, alice):
    channel = ChannelFactory(owner=alice, name="farm hook")
    sign_in(page, "alice")
    page.goto(f"/app/channels/{channel.pk}")
    page.get_by_label("Subject").fill("{event}")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-json")).to_contain_text('"subject": "FIRING"')


def test_a_default_channel_is_ticked_in_a_new_monitors_editor(page, alice, screenshot):
    SourceFactory(owner=alice)
    pager = ChannelFactory(owner=alice, name="pager")
    ChannelFactory(owner=alice, name="archive")
    sign_in(page, "alice")
    page.goto(f"/app/channels/{pager.pk}")
    expect(page.get_by_test_id("default-state")).to_have_text(
        "New monitors do not start with this channel."
    )
    page.get_by_role("button", name="Tick it for new monitors").click()
    expect(page.get_by_test_id("default-state")).to_have_text(
        "New monitors start with this channel ticked."
    )
    page.goto("/app/channels")
    expect(page.get_by_test_id("default-channel")).to_have_count(1)

    page.goto("/app/monitors/new")
    expect(page.get_by_role("checkbox", name="pager")).to_be_checked()
    expect(page.get_by_role("checkbox", name="archive")).not_to_be_checked()
    screenshot(page, "editor-defaults")


def test_the_channel_page_passes_the_accessibility_checks(page, alice):
    channel = ChannelFactory(owner=alice, name="farm hook")
    a_past_alert(channel)
    sign_in(page, "alice")
    assert audit(page, f"/app/channels/{channel.pk}") == []


def test_another_customers_channel_page_is_a_404(client_for, alice, bob):
    channel = ChannelFactory(owner=alice)
    assert client_for(bob).get(f"/app/channels/{channel.pk}").status_code == 404
    assert (
        client_for(bob).post(f"/app/channels/{channel.pk}/default", {"on": "1"}).status_code == 404
    )
    assert client_for(alice).get(f"/app/channels/{channel.pk}").status_code == 200


def test_the_preview_follows_the_typing_without_a_reload(page, alice, screenshot):
    channel = ChannelFactory(
        owner=alice, name="farm mail", kind="email", config={"addresses": ["f@example.com"]}
    )
    a_past_alert(channel)
    sign_in(page, "alice")
    page.goto(f"/app/channels/{channel.pk}")
    page.evaluate("window.__notReloaded = true")

    page.get_by_label("Body").press_sequentially("{monitor}: {value} ({state})", delay=10)
    expect(page.get_by_test_id("preview-body")).to_have_text("greenhouse too hot: 41.2 °C (Firing)")
    page.get_by_label("Body").press_sequentially(" {nope}", delay=10)
    expect(page.locator("#message-form .errorlist")).to_contain_text("{nope} is not a variable.")
    expect(page.get_by_label("Body")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Body").fill("{monitor} fixed")
    expect(page.locator("#message-form .errorlist")).to_have_count(0)
    expect(page.get_by_test_id("preview-body")).to_have_text("greenhouse too hot fixed")
    assert page.evaluate("window.__notReloaded === true")
    channel.refresh_from_db()
    assert channel.body_template == ""  # typing saves nothing
    screenshot(page, "typed")


def test_a_test_message_from_the_channel_page_uses_its_saved_subject(page, alice, smtp_inbox):
    channel = ChannelFactory(
        owner=alice,
        name="farm mail",
        kind="email",
        config={"addresses": ["f@example.com"]},
        subject_template="[{event}] from {monitor}",
    )
    sign_in(page, "alice")
    page.goto(f"/app/channels/{channel.pk}")
    page.get_by_role("button", name="Send a test message").click()
    expect(page.locator(".messages")).to_contain_text("Test notification sent to “farm mail”.")
    expect(page.get_by_role("heading", name="farm mail")).to_be_visible()  # back on its page
    [message] = smtp_inbox.messages
    assert message["Subject"] == "[TEST] from Test of “farm mail”"
