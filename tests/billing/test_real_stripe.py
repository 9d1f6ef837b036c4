"""Opt-in: the whole flow against real Stripe test mode.

Runs only when ``STRIPE_TEST_SECRET_KEY`` (an ``sk_test_...`` key) is set; it creates its own
prices and a customer in that test account, so it never depends on the dashboard's setup.
"""

from __future__ import annotations

import os
import secrets

import pytest

from billing.stripe_gateway import StripeClient

KEY = os.environ.get("STRIPE_TEST_SECRET_KEY", "")

pytestmark = [
    pytest.mark.skipif(
        not KEY,
        reason="STRIPE_TEST_SECRET_KEY is not set: the real Stripe test-mode suite is opt-in "
        "(the rest of the suite uses FakeStripe, since this machine cannot reach Stripe)",
    ),
    pytest.mark.skipif(
        bool(KEY) and not KEY.startswith(("sk_test_", "rk_test_")),
        reason="STRIPE_TEST_SECRET_KEY must be a test-mode key (sk_test_...), never a live one",
    ),
]


@pytest.fixture
def real_stripe(settings):
    settings.STRIPE_SECRET_KEY = KEY
    settings.STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_TEST_PUBLISHABLE_KEY", "pk_test_x")
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    run = secrets.token_hex(4)
    client = StripeClient.from_settings()._client
    product = client.v1.products.create({"name": f"growalert test {run}"})
    monthly = client.v1.prices.create(
        {
            "product": product.id,
            "unit_amount": 1500,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "lookup_key": f"growalert_monthly_{run}",
        }
    )
    device = client.v1.prices.create(
        {
            "product": product.id,
            "unit_amount": 4900,
            "currency": "usd",
            "lookup_key": f"gro01_device_{run}",
        }
    )
    settings.STRIPE_SUBSCRIPTION_PRICES = [monthly.lookup_key]
    settings.STRIPE_DEVICE_PRICE = device.lookup_key
    return monthly


@pytest.mark.django_db
def test_the_whole_flow_against_stripe_test_mode(api, real_stripe):
    config = api.get("/config").json()
    assert config["prices"][0]["id"] == real_stripe.id

    email = f"growalert-{secrets.token_hex(4)}@example.com"
    signup = api.post(
        "/create-customer", {"email": email, "password": "correct horse battery"}, format="json"
    )
    assert signup.status_code == 200, signup.content
    assert signup.json()["customer"]["id"].startswith("cus_")

    sub = api.post(
        "/create-subscription", {"priceId": real_stripe.id, "quantity": 2}, format="json"
    )
    assert sub.status_code == 200, sub.content
    assert "_secret_" in sub.json()["clientSecret"]

    paid = api.post("/charge", {"token": "tok_visa", "quantity": 1}, format="json")
    assert paid.status_code == 200, paid.content
    assert paid.json()["object"] == "charge"
    assert paid.json()["amount"] == 4900

    declined = api.post("/charge", {"token": "tok_chargeDeclined", "quantity": 1}, format="json")
    assert declined.status_code == 402
    assert declined.json()["error"]["message"]

    three_ds = api.post(
        "/charge", {"token": "tok_threeDSecure2Required", "quantity": 1}, format="json"
    )
    assert three_ds.status_code == 200, three_ds.content
    assert three_ds.json()["requiresAction"] is True

    preview = api.get(f"/invoice-preview?subscription={sub.json()['subscriptionId']}")
    assert preview.status_code == 200, preview.content

    canceled = api.post(
        f"/subscriptions/{sub.json()['subscriptionId']}/cancel",
        {"atPeriodEnd": False},
        format="json",
    )
    assert canceled.json()["subscription"]["status"] in ("canceled", "incomplete_expired")
