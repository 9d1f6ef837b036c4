"""API tokens: stored hashed, shown once, several per user, revocable; one SQL statement
authenticates a request and answers the subscription check. alice owns, bob is another
customer, an anonymous client has no token."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import tokens
from accounts.models import ApiToken
from accounts.services import MAX_TOKENS_PER_USER, api_token_create
from billing.gating import comp, has_active_service
from billing.models import Customer, Subscription
from tests.factories import MonitorFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    user = UserFactory(username="alice")
    comp(user)
    return user


@pytest.fixture
def bob():
    user = UserFactory(username="bob")
    comp(user)
    return user


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_token_is_greppable_and_only_its_hash_and_prefix_are_stored(alice) -> None:
    row, token = api_token_create(owner=alice, name="grafana")

    assert token.startswith(f"{row.prefix}_")
    assert row.prefix.startswith("ga_")
    assert len(row.prefix) == 11
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = ApiToken.objects.filter(pk=row.pk).values_list()[0]
    assert not any(token in str(value) for value in stored)


def test_only_strings_shaped_like_tokens_are_looked_up() -> None:
    assert tokens.parse(tokens.generate()) is not None
    assert tokens.parse("0123456789abcdef0123456789abcdef01234567") is not None  # legacy
    assert tokens.parse("ga_12345678_short") is None
    assert tokens.parse("x" * 40) is None


def test_alice_creates_a_token_sees_it_once_and_lists_it_by_prefix(alice) -> None:
    client = session(alice)

    created = client.post("/tokens", {"name": "home assistant"}, format="json")
    listed = client.get("/tokens").json()

    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith(created.json()["prefix"])
    assert listed == [{k: v for k, v in created.json().items() if k != "token"}]
    assert bearer(token).get("/monitors").status_code == 200
    assert bearer(token).get("/tokens").json()[0]["last_used_at"]


def test_a_user_has_several_named_tokens_within_a_bound(alice) -> None:
    client = session(alice)
    for i in range(MAX_TOKENS_PER_USER):
        assert client.post("/tokens", {"name": f"t{i}"}, format="json").status_code == 201

    over = client.post("/tokens", {"name": "one more"}, format="json")
    nameless = client.post("/tokens", {"name": ""}, format="json")
    too_long = client.post("/tokens", {"name": "x" * 101}, format="json")

    assert over.status_code == 400
    assert "revoke one" in over.json()["detail"]
    assert nameless.status_code == too_long.status_code == 400
    assert len(client.get("/tokens").json()) == MAX_TOKENS_PER_USER


def test_a_revoked_token_is_refused_and_bob_cannot_revoke_alices(alice, bob) -> None:
    row, token = api_token_create(owner=alice, name="ci")

    by_bob = session(bob).delete(f"/tokens/{row.pk}")
    assert by_bob.status_code == 404
    assert bearer(token).get("/monitors").status_code == 200
    assert session(alice).delete(f"/tokens/{row.pk}").status_code == 204

    refused = bearer(token).get("/monitors")
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Invalid or revoked token."}
    assert session(alice).get("/tokens").json() == []
    assert session(bob).get("/tokens").json() == []


def test_tokens_need_authentication() -> None:
    assert APIClient().get("/tokens").status_code == 401
    assert APIClient().post("/tokens", {"name": "x"}, format="json").status_code == 401
    assert bearer("ga_00000000_" + "A" * 43).get("/tokens").status_code == 401
    assert bearer("not-a-token").get("/monitors").status_code == 401


def test_expired_tokens_and_inactive_users_are_refused(alice, bob) -> None:
    expired, expired_token = api_token_create(owner=alice, name="old")
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now())
    _, bobs = api_token_create(owner=bob, name="bob")
    bob.is_active = False
    bob.save()

    assert bearer(expired_token).get("/monitors").status_code == 401
    assert bearer(bobs).get("/monitors").status_code == 401


def test_last_used_is_written_at_most_once_a_minute(alice) -> None:
    row, token = api_token_create(owner=alice, name="poller")
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        bearer(token).get("/tokens")
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        bearer(token).get("/tokens")
        row.refresh_from_db()
        assert row.last_used_at == start
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        bearer(token).get("/tokens")
        row.refresh_from_db()
        assert row.last_used_at == start + timedelta(seconds=61)


def test_get_monitors_authenticates_and_checks_the_subscription_in_one_query(
    alice, django_assert_num_queries
) -> None:
    row, token = api_token_create(owner=alice, name="script")
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    MonitorFactory.create_batch(3, owner=alice)
    client = bearer(token)

    # token + user + subscription facts, then the page: nothing else
    with django_assert_num_queries(2):
        page = client.get("/monitors")

    assert page.json()["count"] == 3


def test_an_unpaid_account_gets_402_from_the_facts_read_with_its_token(
    django_assert_num_queries,
) -> None:
    charlie = UserFactory(username="charlie")
    row, token = api_token_create(owner=charlie, name="x")
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())

    with django_assert_num_queries(1):
        response = bearer(token).get("/monitors")

    assert response.status_code == 402


NOW = timezone.now()
CASES = [
    ("active", {}),
    ("canceled", {}),
    ("past_due", {"past_due_since": NOW - timedelta(days=1)}),
    ("past_due", {"past_due_since": NOW - timedelta(days=30)}),
    ("past_due", {"current_period_end": NOW - timedelta(days=1)}),
    ("incomplete", {}),
]


@pytest.mark.parametrize(("status", "fields"), CASES)
def test_the_token_path_decides_like_has_active_service(status, fields) -> None:
    user = UserFactory()
    customer = Customer.objects.create(user=user, stripe_customer_id=f"cus_{user.pk}")
    Subscription.objects.create(
        customer=customer, stripe_subscription_id=f"sub_{user.pk}", status=status, **fields
    )
    Subscription.objects.create(
        customer=customer, stripe_subscription_id=f"sub_old_{user.pk}", status="canceled"
    )
    _, token = api_token_create(owner=user, name="x")

    served = bearer(token).get("/monitors").status_code == 200

    assert served is has_active_service(user)


def test_legacy_authtoken_keys_keep_working_after_the_migration(alice) -> None:
    from importlib import import_module

    from django.apps import apps

    copy_keys = import_module("accounts.migrations.0002_copy_authtoken_keys").copy_keys
    key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamptz NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [key, alice.pk])

    with connection.schema_editor() as editor:
        copy_keys(apps, editor)

    assert bearer(key).get("/monitors").status_code == 200
    migrated = ApiToken.objects.get(owner=alice)
    assert (migrated.prefix, migrated.token_hash) == (key[:8], tokens.digest(key))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM authtoken_token")
        assert cursor.fetchone() == (0,)  # no key left in clear


def test_the_openapi_schema_documents_the_token_endpoints(client) -> None:
    schema = client.get("/api/schema", HTTP_ACCEPT="application/json").json()

    assert {"get", "post"} <= set(schema["paths"]["/tokens"])
    assert "delete" in schema["paths"]["/tokens/{token_id}"]
    assert schema["components"]["securitySchemes"]["tokenAuth"]["name"] == "Authorization"
    assert {"tokenAuth": []} in schema["paths"]["/monitors"]["get"]["security"]
