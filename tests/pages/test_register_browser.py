"""The signup flow in Debian's chromium against the real server and FakeStripe, with
js.stripe.com served by a local stand-in (tests/pages/stripe_standin.js)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from billing.models import Customer, Subscription
from devices.models import Device

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a long enough passphrase"


def fill_account(page: Page, email: str) -> None:
    page.goto("/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Name").fill("Grace Grower")
    page.get_by_role("button", name="Continue").click()


def choose_plan_and_devices(page: Page, devices: int) -> None:
    expect(page.get_by_role("heading", name="Choose your plan")).to_be_visible()
    expect(page.get_by_label("growalert — $15.00 per month")).to_be_checked()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("How many devices?").fill(str(devices))
    expect(page.get_by_text("$49.00 each, billed once")).to_be_visible()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Pay")).to_be_visible()


def pay_with(page: Page, card: str) -> None:
    page.get_by_label("Card number").fill(card)
    page.locator("#pay").click()


def test_signup_pays_and_lands_on_the_dashboard(page, stripe_standin, fake_stripe, screenshot):
    fill_account(page, "grace@example.com")
    choose_plan_and_devices(page, 2)
    expect(page.locator("#order-summary")).to_contain_text("Due today: $113.00")
    screenshot(page, "pay-step")
    pay_with(page, "4242 4242 4242 4242")

    page.wait_for_url("**/app/?welcome=1")
    expect(page.get_by_role("heading", name="Monitors")).to_be_visible()
    expect(page.locator("#billing-banner")).to_have_count(0)
    screenshot(page, "dashboard")
    customer = Customer.objects.get(user__email="grace@example.com")
    assert customer.subscriptions.get().status == Subscription.Status.ACTIVE
    assert Device.objects.filter(owner=customer.user).count() == 2
    [sent] = fake_stripe.sent("POST", "/v1/subscriptions")
    assert sent.params["add_invoice_items"][0]["quantity"] == "2"


def test_a_card_needing_3d_secure_completes_the_challenge(
    page, stripe_standin, fake_stripe, screenshot
):
    fill_account(page, "sca@example.com")
    choose_plan_and_devices(page, 0)
    pay_with(page, "4000002500003155")
    challenge = page.get_by_role("dialog", name="3D Secure authentication")
    expect(challenge).to_be_visible()
    screenshot(page, "challenge")
    challenge.get_by_role("button", name="Complete authentication").click()

    page.wait_for_url("**/app/?welcome=1")
    assert [c.get("three_d_secure") for c in stripe_standin.confirmations] == [None, "pass"]
    subscription = Subscription.objects.get(customer__user__email="sca@example.com")
    assert subscription.status == Subscription.Status.ACTIVE


def test_a_decline_shows_the_reason_and_a_retry_pays_the_same_subscription(
    page, stripe_standin, fake_stripe, screenshot
):
    fill_account(page, "declined@example.com")
    choose_plan_and_devices(page, 1)
    pay_with(page, "4000000000000002")
    errors = page.locator("#card-errors")
    expect(errors).to_contain_text("Your card was declined.")
    expect(page.locator("#pay")).to_have_text("Try again")
    expect(page.locator("#pay")).to_be_enabled()
    expect(page.locator("[data-back='4']")).to_be_hidden()  # the order is fixed now
    screenshot(page, "declined")

    page.get_by_label("Card number").fill("4242424242424242")
    page.locator("#pay").click()
    page.wait_for_url("**/app/?welcome=1")

    assert len(fake_stripe.sent("POST", "/v1/customers")) == 1
    assert len(fake_stripe.sent("POST", "/v1/subscriptions")) == 1
    assert Customer.objects.filter(user__email="declined@example.com").count() == 1
    subscription = Subscription.objects.get(customer__user__email="declined@example.com")
    assert subscription.status == Subscription.Status.ACTIVE
    secrets = {c["client_secret"] for c in stripe_standin.confirmations}
    assert len(secrets) == 1


def test_account_errors_show_next_to_the_fields(page, stripe_standin, alice):
    fill_account(page, alice.email)
    expect(page.locator("#email-error")).to_contain_text("already exists")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Email").fill("new@example.com")
    page.get_by_label("Password").fill("123")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#password-error")).to_contain_text("too short")


def test_when_stripe_js_cannot_load_the_page_says_so(page, fake_stripe, screenshot):
    page.route("https://js.stripe.com/**", lambda route: route.abort())
    page.goto("/register")
    status = page.locator("#register-status")
    expect(status).to_contain_text("Stripe.js did not load")
    screenshot(page, "stripe-unreachable")


def test_when_stripe_is_not_configured_registration_makes_a_free_account(
    page, settings, screenshot
):
    settings.STRIPE_SECRET_KEY = ""
    page.route("https://js.stripe.com/**", lambda route: route.abort())
    page.goto("/register")
    expect(page.get_by_text("accounts are free")).to_be_visible()
    page.get_by_label("Email").fill("self-hosted@example.com")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/app/")
    expect(page.get_by_text("Welcome to growalert")).to_be_visible()
    screenshot(page, "free-account")


def test_buying_more_devices_on_the_account_page(page, stripe_standin, fake_stripe, screenshot):
    fill_account(page, "more@example.com")
    choose_plan_and_devices(page, 0)
    pay_with(page, "4242424242424242")
    page.wait_for_url("**/app/?welcome=1")

    page.goto("/app/account")
    page.get_by_label("Devices", exact=True).fill("2")
    page.get_by_label("Card number").fill("4242424242424242")
    page.get_by_role("button", name="Buy devices").click()
    expect(page.get_by_text("GRO-01 #2")).to_be_visible()
    screenshot(page, "devices")
    assert Device.objects.filter(owner__email="more@example.com").count() == 2
    [intent] = fake_stripe.sent("POST", "/v1/payment_intents")
    assert intent.params["amount"] == "9800"
