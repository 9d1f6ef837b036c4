"""Billing fixtures: a FakeStripe on loopback (settings point the SDK at it), signed webhooks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe
from django.test import Client
from rest_framework.test import APIClient

from billing.models import Customer
from billing.selectors import forget_prices
from tests.factories import UserFactory
from tests.fakes.stripe_api import FakeStripe, make_event

WEBHOOK_SECRET = "whsec_test_growalert"
MONTHLY_CENTS = 1500
DEVICE_CENTS = 4900


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fake_stripe(settings: Any) -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    fake.monthly = fake.add_price(lookup_key="growalert_monthly", unit_amount=MONTHLY_CENTS)  # type: ignore[attr-defined]
    fake.device = fake.add_price(  # type: ignore[attr-defined]
        lookup_key="gro01_device", unit_amount=DEVICE_CENTS, recurring=False, product_name="GRO-01"
    )
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_SUBSCRIPTION_PRICES = ["growalert_monthly"]
    settings.STRIPE_DEVICE_PRICE = "gro01_device"
    settings.BILLING_MAX_DEVICES_PER_ORDER = 100
    # A later fake may get an earlier one's port: never serve it that one's cached prices.
    forget_prices()
    yield fake
    forget_prices()
    fake.stop()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def signed_up(api: APIClient, fake_stripe: FakeStripe) -> Customer:
    """alice, signed up through /create-customer and logged in on ``api``."""
    response = api.post(
        "/create-customer",
        {"email": "alice@example.com", "password": "correct horse battery staple"},
        format="json",
    )
    assert response.status_code == 200, response.content
    return Customer.objects.get(user__email="alice@example.com")


@pytest.fixture
def stripe_customer(fake_stripe: FakeStripe) -> Callable[..., Customer]:
    """A user with a Customer whose Stripe customer exists in the fake (no HTTP involved)."""

    def make(**user_fields: Any) -> Customer:
        user = UserFactory(**user_fields)
        stripe_id = fake_stripe._create_customer({"email": user.email})["id"]
        return Customer.objects.create(user=user, stripe_customer_id=stripe_id)

    return make


def sign(payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp))


@pytest.fixture
def post_event(client: Client) -> Callable[..., Any]:
    """Post an event (or a ``make_event`` built from type and object) signed for real."""

    def post(event: dict[str, Any], *, signature: str | None = None) -> Any:
        payload = json.dumps(event)
        header = signature if signature is not None else sign(payload)
        return client.post(
            "/webhook", payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )

    return post


__all__ = ["make_event"]
