"""Billing switched off (no STRIPE_SECRET_KEY): what docs/billing.md documents.

Endpoints that act at Stripe answer 503 ``not_configured`` before looking at the caller or the
body (an anonymous caller or a user without a customer is not told 401, a bad body is not a
400); the local reads keep answering, and /config keeps its documented shape."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory

STRIPE_ENDPOINTS = [
    ("post", "/create-customer", {"email": "x@example.com", "password": "a long passphrase"}),
    ("post", "/create-subscription", {"priceId": "price_x", "quantity": 1}),
    ("post", "/charge", {"token": "tok_visa", "quantity": 1}),
    ("post", "/customer-portal", {"returnPath": "/app/account"}),
    ("get", "/invoice-preview", None),
    ("post", "/subscriptions/sub_x/cancel", {"atPeriodEnd": True}),
    ("post", "/subscriptions/sub_x/resume", None),
]


@pytest.fixture(autouse=True)
def _billing_off(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_PUBLISHABLE_KEY = ""


def call(api: APIClient, method: str, path: str, body: dict[str, Any] | None) -> Any:
    return getattr(api, method)(path, body, format="json") if body else getattr(api, method)(path)


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body"), STRIPE_ENDPOINTS)
@pytest.mark.parametrize("caller", ["anonymous", "user without a customer"])
def test_endpoints_that_act_at_stripe_answer_503(api, method, path, body, caller):
    if caller != "anonymous":
        api.force_authenticate(UserFactory())

    response = call(api, method, path, body)

    assert response.status_code == 503, response.content
    assert response.json() == {
        "error": {"message": "Billing is not configured on this server.", "code": "not_configured"}
    }


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/create-subscription", "/charge", "/customer-portal"])
def test_an_invalid_body_still_gets_503_not_400(api, path):
    api.force_authenticate(UserFactory())

    response = api.post(path, {"quantity": "lots"}, format="json")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_configured"


@pytest.mark.django_db
def test_a_form_post_to_the_portal_gets_503_too(client):
    client.force_login(UserFactory())

    response = client.post("/customer-portal", {"returnPath": "/app/account"})

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_configured"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/subscriptions", "/device-orders", "/devices", "/customer"])
def test_local_reads_keep_answering(api, path):
    """They read growalert's own rows: no customer is still 401, not 503."""
    api.force_authenticate(UserFactory())

    response = api.get(path)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "no_customer"


@pytest.mark.django_db
def test_config_keeps_its_documented_shape(api):
    body = api.get("/config").json()

    assert body == {"publishableKey": "", "prices": [], "devicePriceId": None, "configured": False}
