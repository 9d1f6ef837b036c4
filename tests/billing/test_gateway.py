"""The Stripe gateway against FakeStripe: what is sent, and how failures come back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from billing.selectors import forget_prices
from billing.stripe_gateway import (
    API_VERSION,
    CardDeclined,
    InvalidRequest,
    NotConfigured,
    StripeClient,
    StripeUnavailable,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(fake_stripe):
    return StripeClient.from_settings()


def test_the_pinned_version_is_the_one_the_sdk_was_built_for():
    import stripe

    assert stripe.api_version == API_VERSION


def test_only_the_gateway_imports_stripe():
    importers = [
        path.relative_to(ROOT).as_posix()
        for package in ("billing", "monitors", "growalert")
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"^\s*(import stripe|from stripe)", path.read_text(), re.MULTILINE)
    ]

    assert importers == ["billing/stripe_gateway.py"]


def test_every_post_carries_the_callers_idempotency_key(client, fake_stripe):
    client.create_customer(email="a@example.com", name="", user_id=1, idempotency_key="k-1")

    (request,) = fake_stripe.sent("POST", "/v1/customers")
    assert request.header("Idempotency-Key") == "k-1"
    assert request.header("Authorization") == "Bearer sk_test_fake"


def test_a_repeated_key_gets_the_first_result(client, fake_stripe):
    first = client.create_customer(email="a@example.com", name="", user_id=1, idempotency_key="k")
    second = client.create_customer(email="a@example.com", name="", user_id=1, idempotency_key="k")

    assert first["id"] == second["id"]
    assert len(fake_stripe.customers) == 1


def test_a_reused_key_with_other_parameters_is_an_invalid_request(client):
    client.create_customer(email="a@example.com", name="", user_id=1, idempotency_key="k")

    with pytest.raises(InvalidRequest):
        client.create_customer(email="b@example.com", name="", user_id=2, idempotency_key="k")


def test_a_missing_resource_is_an_invalid_request_with_stripes_code(client):
    with pytest.raises(InvalidRequest) as raised:
        client.retrieve_price("price_missing")

    assert raised.value.code == "resource_missing"
    assert "price_missing" in raised.value.message


def test_a_decline_carries_the_message_and_codes(client, fake_stripe):
    customer = fake_stripe._create_customer({"email": "a@example.com"})
    method = client.payment_method_from_token("tok_chargeDeclined", idempotency_key="pm")

    with pytest.raises(CardDeclined) as raised:
        client.confirm_payment(
            amount=100,
            currency="usd",
            customer_id=customer["id"],
            payment_method_id=method["id"],
            description="",
            metadata={},
            idempotency_key="pi",
        )

    assert raised.value.message == "Your card was declined."
    assert raised.value.decline_code == "generic_decline"
    assert raised.value.payment_intent_id.startswith("pi_")


def test_server_errors_are_retried_with_the_same_key(client, fake_stripe):
    fake_stripe.failures.append(500)

    client.create_customer(email="a@example.com", name="", user_id=1, idempotency_key="k")

    attempts = fake_stripe.sent("POST", "/v1/customers")
    assert len(attempts) == 2
    assert {r.header("Idempotency-Key") for r in attempts} == {"k"}
    assert len(fake_stripe.customers) == 1


def test_a_persistent_outage_is_stripe_unavailable(client, fake_stripe):
    fake_stripe.failures.extend([503] * 3)

    with pytest.raises(StripeUnavailable):
        client.retrieve_price("price_x")


def test_a_refused_api_key_is_stripe_unavailable_and_never_echoed(fake_stripe, settings, caplog):
    settings.STRIPE_SECRET_KEY = "rk_revoked_secret"

    with pytest.raises(StripeUnavailable) as raised:
        StripeClient.from_settings().retrieve_price("price_x")

    assert raised.value.code == "auth"
    assert "rk_revoked_secret" not in raised.value.message
    assert "rk_revoked_secret" not in caplog.text


def test_unreachable_stripe_is_stripe_unavailable(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"

    with pytest.raises(StripeUnavailable):
        StripeClient.from_settings().retrieve_price("price_x")


def test_without_a_secret_key_billing_is_not_configured(settings):
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(NotConfigured):
        StripeClient.from_settings()


@pytest.mark.django_db
def test_a_missing_configured_price_is_left_out_of_config(api, fake_stripe, settings):
    settings.STRIPE_SUBSCRIPTION_PRICES = ["price_missing", "growalert_monthly"]
    forget_prices()

    body = api.get("/config").json()

    assert [p["id"] for p in body["prices"]] == [
        fake_stripe.monthly["id"],
        fake_stripe.device["id"],
    ]
