from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from billing.gating import (
    PAYMENT_REQUIRED_MESSAGE,
    HasActiveSubscription,
    comp,
    gated_owner_ids,
    has_active_service,
)
from billing.models import Customer, Subscription
from tests.factories import UserFactory
from tests.fakes.stripe_api import make_event

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def subscribed(status, **fields):
    customer = Customer.objects.create(
        user=UserFactory(), stripe_customer_id=f"cus_{UserFactory._meta.model.objects.count()}"
    )
    Subscription.objects.create(
        customer=customer, stripe_subscription_id=f"sub_{customer.pk}", status=status, **fields
    )
    return customer.user


class MonitorsLikeView(APIView):
    permission_classes = [HasActiveSubscription]

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True}, status=201)


def call(method, user):
    factory = APIRequestFactory()
    request = getattr(factory, method)("/monitors", {}, format="json")
    force_authenticate(request, user=user)
    return MonitorsLikeView.as_view()(request)


@pytest.mark.django_db
def test_alice_with_an_active_subscription_is_served():
    alice = subscribed("active")

    assert has_active_service(alice)
    assert alice.pk not in set(gated_owner_ids())


@pytest.mark.django_db
def test_trialing_is_served_and_incomplete_is_not():
    assert has_active_service(subscribed("trialing"))
    assert not has_active_service(subscribed("incomplete"))
    assert not has_active_service(subscribed("canceled"))
    assert not has_active_service(subscribed("unpaid"))


@pytest.mark.django_db
def test_an_account_without_a_customer_is_not_served():
    charlie = UserFactory()

    assert not has_active_service(charlie)
    assert charlie.pk in set(gated_owner_ids())


@pytest.mark.django_db
def test_staff_superusers_and_comped_accounts_are_exempt():
    staff = UserFactory(is_staff=True)
    root = UserFactory(is_superuser=True)
    partner = UserFactory()
    comp(partner)

    assert all(has_active_service(u) for u in (staff, root, partner))
    assert not {staff.pk, root.pk, partner.pk} & set(gated_owner_ids())
    assert Customer.objects.get(user=partner).stripe_customer_id is None


@pytest.mark.django_db
def test_comp_keeps_an_existing_stripe_customer():
    bob = subscribed("canceled")

    customer = comp(bob)

    assert customer.comped
    assert customer.stripe_customer_id
    assert has_active_service(bob)


@pytest.mark.django_db
def test_past_due_is_served_during_the_grace_period_only(settings):
    settings.BILLING_PAST_DUE_GRACE_DAYS = 7
    bob = subscribed("past_due", past_due_since=NOW)

    with time_machine.travel(NOW + timedelta(days=6, hours=23), tick=False):
        assert has_active_service(bob)
        assert bob.pk not in set(gated_owner_ids())
    with time_machine.travel(NOW + timedelta(days=7, minutes=1), tick=False):
        assert not has_active_service(bob)
        assert bob.pk in set(gated_owner_ids())


@pytest.mark.django_db
def test_past_due_without_a_failure_time_counts_from_the_period_end(settings):
    settings.BILLING_PAST_DUE_GRACE_DAYS = 3
    bob = subscribed("past_due", current_period_end=NOW)

    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        assert has_active_service(bob)
    with time_machine.travel(NOW + timedelta(days=4), tick=False):
        assert not has_active_service(bob)


@pytest.mark.django_db
def test_gated_owner_ids_is_one_query_whatever_the_number_of_users():
    for status in ("active", "past_due", "canceled", "incomplete", "trialing"):
        subscribed(status)
    UserFactory.create_batch(5)

    with CaptureQueriesContext(connection) as queries:
        gated = set(gated_owner_ids())

    assert len(queries) == 1
    assert len(gated) == 2 + 5


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_the_permission_answers_402_with_a_clear_message(method):
    unpaid = subscribed("incomplete")

    response = call(method, unpaid)

    assert response.status_code == 402
    assert response.data["detail"] == PAYMENT_REQUIRED_MESSAGE
    assert "active subscription is required" in PAYMENT_REQUIRED_MESSAGE


@pytest.mark.django_db
def test_the_permission_lets_paying_customers_through():
    assert call("post", subscribed("active")).status_code == 201


@pytest.mark.django_db
def test_service_stops_on_payment_failure_and_resumes_when_the_invoice_is_paid(
    api, fake_stripe, signed_up, post_event, settings
):
    settings.BILLING_PAST_DUE_GRACE_DAYS = 0
    body = {"priceId": fake_stripe.monthly["id"]}
    sub_id = api.post("/create-subscription", body, format="json").json()["subscriptionId"]
    sub = fake_stripe.subscriptions[sub_id]
    invoice = {
        "id": sub["latest_invoice"],
        "object": "invoice",
        "customer": sub["customer"],
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub_id},
        },
    }
    alice = signed_up.user
    assert not has_active_service(alice)

    now = int(time.time())
    post_event(make_event("invoice.paid", invoice, created=now + 1))
    assert has_active_service(alice)

    post_event(make_event("invoice.payment_failed", {**invoice, "id": "in_2"}, created=now + 2))
    with time_machine.travel(now + 10, tick=False):  # past the (zero-day) grace period
        assert not has_active_service(alice)
        assert alice.pk in set(gated_owner_ids())

    post_event(make_event("invoice.paid", {**invoice, "id": "in_2"}, created=now + 3))
    assert has_active_service(alice)
    assert alice.pk not in set(gated_owner_ids())


GRACE_CASES = [
    {},
    {"past_due_since": NOW - timedelta(days=1)},
    {"past_due_since": NOW - timedelta(days=8)},
    {"current_period_end": NOW - timedelta(days=1)},
    {"current_period_end": NOW - timedelta(days=8)},
    {"past_due_since": NOW - timedelta(days=8), "current_period_end": NOW},
]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [s.value for s in Subscription.Status])
@pytest.mark.parametrize("fields", GRACE_CASES)
def test_the_per_user_check_agrees_with_the_dispatchers_sql_rule(settings, status, fields):
    """has_active_service decides in Python; gated_owner_ids filters in SQL: same answers."""
    settings.BILLING_PAST_DUE_GRACE_DAYS = 7
    with time_machine.travel(NOW, tick=False):
        user = subscribed(status, **fields)
        second = subscribed("canceled")  # a second subscription of another user changes nothing
        Subscription.objects.create(
            customer=user.billing_customer,
            stripe_subscription_id=f"sub_old_{user.pk}",
            status="canceled",
        )

        gated = set(gated_owner_ids())
        assert has_active_service(user) is (user.pk not in gated)
        assert not has_active_service(second)
        assert second.pk in gated


@pytest.mark.django_db
def test_the_per_user_check_is_one_query():
    user = subscribed("past_due", past_due_since=NOW)
    with CaptureQueriesContext(connection) as queries:
        has_active_service(user)
    assert len(queries) == 1
