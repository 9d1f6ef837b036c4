from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from billing.models import Customer
from billing.views import CUSTOMER_COOKIE, CUSTOMER_COOKIE_SALT
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"


def signup(api, email="alice@example.com", **extra):
    return api.post(
        "/create-customer", {"email": email, "password": PASSWORD, **extra}, format="json"
    )


@pytest.mark.django_db
def test_it_creates_the_account_and_the_stripe_customer(api, fake_stripe):
    response = signup(api, name="Alice")

    assert response.status_code == 200
    body = response.json()["customer"]
    assert body["object"] == "customer"
    assert body["email"] == "alice@example.com"
    customer = Customer.objects.get(stripe_customer_id=body["id"])
    assert customer.user.email == "alice@example.com"
    assert customer.user.check_password(PASSWORD)
    assert body["metadata"] == {"growalert_user_id": str(customer.user.pk)}


@pytest.mark.django_db
def test_it_sends_an_idempotency_key_named_after_the_action(api, fake_stripe):
    signup(api)

    (request,) = fake_stripe.sent("POST", "/v1/customers")
    user = get_user_model().objects.get(email="alice@example.com")
    assert request.header("Idempotency-Key") == f"create-customer:user-{user.pk}"
    assert request.header("Stripe-Version") == "2026-10-28.endive"
    assert request.params["email"] == "alice@example.com"


@pytest.mark.django_db
def test_it_logs_the_user_in_and_sets_a_signed_httponly_customer_cookie(api, fake_stripe):
    response = signup(api)

    cookie = response.cookies[CUSTOMER_COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    request = RequestFactory().get("/", HTTP_COOKIE=f"{CUSTOMER_COOKIE}={cookie.value}")
    stripe_id = request.get_signed_cookie(CUSTOMER_COOKIE, salt=CUSTOMER_COOKIE_SALT)
    assert stripe_id == response.json()["customer"]["id"]
    assert api.get("/subscriptions").status_code == 200


@pytest.mark.django_db
def test_a_duplicate_email_is_a_400_without_a_second_stripe_customer(api, fake_stripe):
    signup(api)
    other = type(api)()

    response = signup(other, email="Alice@Example.com")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "An account with this email already exists."
    assert len(fake_stripe.sent("POST", "/v1/customers")) == 1


@pytest.mark.django_db
def test_it_refuses_invalid_input_before_calling_stripe(api, fake_stripe):
    bad_email = signup(api, email="not-an-email")
    weak = api.post(
        "/create-customer", {"email": "bob@example.com", "password": "123"}, format="json"
    )

    assert bad_email.status_code == 400
    assert "email" in bad_email.json()["error"]["fields"]
    assert weak.status_code == 400
    assert weak.json()["error"]["code"] == "weak_password"
    assert fake_stripe.sent("POST", "/v1/customers") == []
    assert not get_user_model().objects.filter(email="bob@example.com").exists()


@pytest.mark.django_db
def test_a_logged_in_user_gets_one_stripe_customer_however_often_they_ask(api, fake_stripe):
    user = UserFactory(username="carol", email="carol@example.com")
    api.force_authenticate(user)

    first = api.post("/create-customer", {}, format="json")
    second = api.post("/create-customer", {}, format="json")

    assert first.status_code == second.status_code == 200
    assert first.json()["customer"]["id"] == second.json()["customer"]["id"]
    assert len(fake_stripe.sent("POST", "/v1/customers")) == 1
    assert Customer.objects.get(user=user).stripe_customer_id == first.json()["customer"]["id"]


@pytest.mark.django_db
def test_a_stripe_outage_leaves_no_account_behind(api, fake_stripe):
    fake_stripe.failures.extend([500, 500, 500])

    response = signup(api)

    assert response.status_code == 503
    assert not get_user_model().objects.filter(email="alice@example.com").exists()
    # The SDK retried the POST with the same idempotency key.
    keys = {r.header("Idempotency-Key") for r in fake_stripe.sent("POST", "/v1/customers")}
    assert len(fake_stripe.sent("POST", "/v1/customers")) == 3
    assert len(keys) == 1
