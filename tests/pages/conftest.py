"""Page fixtures: alice (owner, comped), bob (another customer), charlie (no service)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import stripe
from django.test import Client
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    sync_playwright,
)

from billing.gating import comp
from billing.selectors import forget_prices
from monitors.influxdb import client as influx
from tests import customer_influx
from tests.factories import UserFactory
from tests.fakes.stripe_api import FakeStripe, make_event
from tests.monitors.conftest import SeededInflux


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(db: None) -> Any:
    user = UserFactory(username="alice")
    comp(user)
    return user


@pytest.fixture
def bob(db: None) -> Any:
    user = UserFactory(username="bob")
    comp(user)
    return user


@pytest.fixture
def charlie(db: None) -> Any:
    return UserFactory(username="charlie")


@pytest.fixture
def client_for() -> Any:
    def make(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


# --- browser tests ------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".local" / "test-artifacts" / "pages"
STANDIN_JS = (Path(__file__).parent / "stripe_standin.js").read_text()
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WEBHOOK_SECRET = "whsec_test_pages"
CARDS = {
    "4242424242424242": "pay",
    "4000002500003155": "three_d_secure",
    "4000000000000002": "decline",
    "4000000000009995": "insufficient_funds",
}
TOKENS = {
    "pay": "tok_visa",
    "three_d_secure": "tok_threeDSecure2Required",
    "decline": "tok_chargeDeclined",
    "insufficient_funds": "tok_chargeDeclinedInsufficientFunds",
}
DECLINES = {
    "decline": ("generic_decline", "Your card was declined."),
    "insufficient_funds": ("insufficient_funds", "Your card has insufficient funds."),
    "auth_failed": (
        "authentication_required",
        "We are unable to authenticate your payment method. Please choose a different "
        "payment method and try again.",
    ),
}


@pytest.fixture
def fake_stripe(settings: Any) -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    fake.add_price(lookup_key="growalert_monthly", unit_amount=1500)
    fake.add_price(
        lookup_key="gro01_device", unit_amount=4900, recurring=False, product_name="GRO-01"
    )
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_SUBSCRIPTION_PRICES = ["growalert_monthly"]
    settings.STRIPE_DEVICE_PRICE = "gro01_device"
    forget_prices()
    yield fake
    forget_prices()
    fake.stop()


class StripeStandIn:
    """Plays js.stripe.com and api.stripe.com for the browser: serves stripe_standin.js and,
    when a card payment is confirmed, pays the FakeStripe invoice and posts Stripe's signed
    webhooks to the live server, as Stripe would."""

    def __init__(self, fake: FakeStripe, site: str) -> None:
        self.fake = fake
        self.site = site
        self.confirmations: list[dict[str, Any]] = []

    def install(self, page: Page) -> None:
        page.route("https://js.stripe.com/**", self._script)
        page.route("https://api.stripe.com/**", self._api)

    def _script(self, route: Route) -> None:
        route.fulfill(status=200, content_type="application/javascript", body=STANDIN_JS)

    def _api(self, route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        path = urlsplit(route.request.url).path
        answer = self._token(body) if path == "/v1/tokens" else self._confirm(body)
        status = 402 if "error" in answer else 200
        route.fulfill(
            status=status,
            content_type="application/json",
            headers={"Access-Control-Allow-Origin": "*"},
            body=json.dumps(answer),
        )

    def _token(self, body: dict[str, Any]) -> dict[str, Any]:
        outcome = CARDS.get(body.get("number", ""))
        if outcome is None:
            return _card_error("incorrect_number", "Your card number is incorrect.")
        return {"id": TOKENS[outcome], "object": "token"}

    def _confirm(self, body: dict[str, Any]) -> dict[str, Any]:
        self.confirmations.append(body)
        invoice = next(
            i
            for i in self.fake.invoices.values()
            if i["_confirmation_secret"]["client_secret"] == body["client_secret"]
        )
        outcome = CARDS.get(body.get("number", ""))
        if outcome is None:
            return _card_error("incorrect_number", "Your card number is incorrect.")
        if outcome == "three_d_secure":
            step = body.get("three_d_secure")
            if step is None:
                return {"id": "pi_standin", "status": "requires_action"}
            outcome = "pay" if step == "pass" else "auth_failed"
        if outcome != "pay":
            decline_code, message = DECLINES[outcome]
            return _card_error("card_declined", message, decline_code=decline_code)
        self._pay(invoice)
        return {"id": "pi_standin", "object": "payment_intent", "status": "succeeded"}

    def _pay(self, invoice: dict[str, Any]) -> None:
        invoice.update(status="paid", amount_paid=invoice["total"], amount_remaining=0)
        sub_id = invoice["parent"]["subscription_details"]["subscription"]
        subscription = self.fake.subscriptions[sub_id]
        subscription["status"] = "active"
        public_invoice = {k: v for k, v in invoice.items() if not k.startswith("_")}
        self._webhook(make_event("invoice.paid", public_invoice))
        self._webhook(make_event("customer.subscription.updated", dict(subscription)))

    def _webhook(self, event: dict[str, Any]) -> None:
        payload = json.dumps(event)
        signature = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)
        response = httpx.post(
            f"{self.site}/webhook",
            content=payload,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code == 200, response.text


def _card_error(code: str, message: str, *, decline_code: str = "") -> dict[str, Any]:
    error = {"type": "card_error", "code": code, "message": message}
    if decline_code:
        error["decline_code"] = decline_code
    return {"error": error}


@pytest.fixture(scope="module")
def browser(django_db_setup: None) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: scripts/bootstrap.sh --browser installs it")
    # Playwright's sync API keeps an event loop in this thread while the browser is open; the
    # ORM calls tests make between browser steps are still plain synchronous code.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# Every page a browser test visits is watched for Content-Security-Policy violations: the
# document's securitypolicyviolation events (reported through a binding that survives
# navigations) and Chromium's "Refused to ..." console errors. Any of them fails the test.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (e) {
  window.__growalertCspViolation(e.effectiveDirective + " blocked " + (e.blockedURI || "inline") +
    " on " + e.documentURI + (e.sourceFile ? " (" + e.sourceFile + ":" + e.lineNumber + ")" : "") +
    (e.sample ? " sample: " + e.sample : ""));
}, true);
"""


@pytest.fixture
def csp_violations() -> list[str]:
    """What the browser reported as CSP violations so far (the ``page`` fixture fills it)."""
    return []


def watch_csp(context: BrowserContext, violations: list[str]) -> Page:
    """A new page of ``context`` whose CSP violations are appended to ``violations``."""

    def report(text: str) -> None:
        violations.append(text)

    context.expose_function("__growalertCspViolation", report)
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(f"console: {message.text}")

    page.on("console", console)
    return page


@pytest.fixture
def page(browser: Browser, live_server: Any, csp_violations: list[str]) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1100, "height": 900})
    context.set_default_timeout(15_000)
    page = watch_csp(context, csp_violations)
    yield page
    context.close()
    assert csp_violations == [], "Content-Security-Policy violations:\n" + "\n".join(csp_violations)


@pytest.fixture
def screenshot(request: Any) -> Any:
    """Saves a full-page screenshot under .local/test-artifacts/pages/ (the test's artifact)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, step: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def stripe_standin(fake_stripe: FakeStripe, live_server: Any, page: Page) -> StripeStandIn:
    standin = StripeStandIn(fake_stripe, live_server.url)
    standin.install(page)
    return standin


def sign_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(username)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/app/")


@pytest.fixture
def influx_db() -> Iterator[SeededInflux]:
    database = f"test_pages_{uuid.uuid4().hex[:12]}"
    with influx.InfluxClient(customer_influx.url(), trusted=True) as client:
        client.create_database(database)
        yield SeededInflux(client, database)
        client.query(
            f"DROP DATABASE {influx.quote_ident(database)}", database=database, method="POST"
        )
