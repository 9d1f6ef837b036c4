from __future__ import annotations

import pytest

from billing.selectors import forget_prices
from tests.billing.conftest import DEVICE_CENTS, MONTHLY_CENTS


@pytest.mark.django_db
def test_it_returns_the_publishable_key_and_configured_prices(api, fake_stripe):
    response = api.get("/config")

    assert response.status_code == 200
    body = response.json()
    assert body["publishableKey"] == "pk_test_fake"
    assert [p["unit_amount"] for p in body["prices"]] == [MONTHLY_CENTS, DEVICE_CENTS]
    assert body["devicePriceId"] == fake_stripe.device["id"]
    assert body["prices"][0]["product"]["name"] == "growalert"


@pytest.mark.django_db
def test_it_looks_prices_up_by_lookup_key_with_the_pinned_version(api, fake_stripe):
    api.get("/config")

    (request,) = fake_stripe.sent("GET", "/v1/prices")
    assert request.params["lookup_keys"] == ["growalert_monthly", "gro01_device"]
    assert request.params["expand"] == ["data.product"]
    assert request.header("Stripe-Version") == "2026-10-28.endive"


@pytest.mark.django_db
def test_it_caches_prices(api, fake_stripe):
    api.get("/config")
    api.get("/config")

    assert len(fake_stripe.sent("GET", "/v1/prices")) == 1


@pytest.mark.django_db
def test_it_accepts_price_ids_in_configuration(api, fake_stripe, settings):
    settings.STRIPE_SUBSCRIPTION_PRICES = [fake_stripe.monthly["id"]]
    forget_prices()

    body = api.get("/config").json()

    assert body["prices"][0]["id"] == fake_stripe.monthly["id"]
    assert fake_stripe.sent("GET", f"/v1/prices/{fake_stripe.monthly['id']}")


@pytest.mark.django_db
def test_it_says_when_billing_is_not_configured(api, settings):
    settings.STRIPE_SECRET_KEY = ""

    response = api.get("/config")

    assert response.status_code == 200
    assert response.json() == {
        "publishableKey": "",
        "prices": [],
        "devicePriceId": None,
        "configured": False,
    }


@pytest.mark.django_db
def test_it_answers_503_when_stripe_is_down(api, fake_stripe):
    fake_stripe.failures.extend([503, 503, 503])

    response = api.get("/config")

    assert response.status_code == 503
    assert "unavailable" in response.json()["error"]["message"]
