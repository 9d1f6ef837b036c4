"""GET /customer: API clients read their own customer record (the payments seed's
``GET /v1/customer/{id}``, scoped to the caller): alice reads hers, bob's id is a 404 to her."""

from __future__ import annotations

import pytest

from accounts.services import api_token_create
from billing.gating import comp
from tests.factories import UserFactory


@pytest.mark.django_db
def test_the_caller_reads_their_own_customer_record(api, signed_up):
    body = api.get("/customer").json()["customer"]

    assert body["id"] == signed_up.stripe_customer_id
    assert body["email"] == "alice@example.com"
    assert body["comped"] is False
    assert body["served"] is False  # no subscription yet
    assert body["subscriptions"] == []


@pytest.mark.django_db
def test_by_id_only_the_callers_own_id_answers(api, signed_up, stripe_customer):
    bob = stripe_customer(username="bob")

    own = api.get(f"/customer/{signed_up.stripe_customer_id}")
    other = api.get(f"/customer/{bob.stripe_customer_id}")

    assert own.status_code == 200
    assert own.json()["customer"]["id"] == signed_up.stripe_customer_id
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "not_found"
    assert bob.stripe_customer_id not in other.content.decode()


@pytest.mark.django_db
def test_an_api_token_reads_the_record_of_a_comped_account(api):
    user = UserFactory(username="carol", email="carol@example.com")
    comp(user)
    _, secret = api_token_create(owner=user, name="script")
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")

    body = api.get("/customer").json()["customer"]

    assert body == {
        "id": None,
        "email": "carol@example.com",
        "username": "carol",
        "comped": True,
        "served": True,
        "created_at": body["created_at"],
        "subscriptions": [],
    }
