from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from billing.models import DeviceOrder, StripeEvent, Subscription
from devices.models import Device
from tests.billing.conftest import sign
from tests.fakes.stripe_api import make_event


@pytest.fixture
def subscription(api, fake_stripe, signed_up):
    """alice's subscription (two devices on its first invoice), as Stripe holds it."""
    body = {"priceId": fake_stripe.monthly["id"], "quantity": 2}
    sub_id = api.post("/create-subscription", body, format="json").json()["subscriptionId"]
    return fake_stripe.subscriptions[sub_id]


def snapshot(sub, **changes):
    return {**sub, **changes}


def local(sub):
    return Subscription.objects.get(stripe_subscription_id=sub["id"])


@pytest.mark.django_db
def test_a_bad_signature_is_a_400_and_nothing_is_stored(post_event, fake_stripe):
    event = make_event("invoice.paid", {"id": "in_1"})

    forged = post_event(event, signature=sign(json.dumps(event), secret="whsec_wrong"))
    missing = post_event(event, signature="")
    garbage = post_event(event, signature="t=abc,v1=def")

    assert forged.status_code == missing.status_code == garbage.status_code == 400
    assert forged.json()["error"]["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_an_old_signed_delivery_is_refused(post_event, fake_stripe):
    event = make_event("invoice.paid", {"id": "in_1"})
    old = sign(json.dumps(event), timestamp=int(time.time()) - 3600)

    assert post_event(event, signature=old).status_code == 400
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_without_a_signing_secret_every_webhook_is_refused(post_event, fake_stripe, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    assert post_event(make_event("invoice.paid", {"id": "in_1"})).status_code == 503
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_an_event_is_stored_once_and_a_replay_is_not_processed_again(post_event, subscription):
    event = make_event("customer.subscription.updated", snapshot(subscription, status="active"))

    first = post_event(event)
    Subscription.objects.filter(stripe_subscription_id=subscription["id"]).update(status="unpaid")
    replay = post_event(event)

    assert first.json() == {"received": True, "duplicate": False, "status": "processed"}
    assert replay.status_code == 200
    assert replay.json()["duplicate"] is True
    stored = StripeEvent.objects.get()
    assert (stored.stripe_event_id, stored.attempts) == (event["id"], 1)
    assert stored.payload == event
    assert local(subscription).status == "unpaid"


@pytest.mark.django_db
def test_an_unknown_event_type_is_stored_and_acknowledged(post_event, fake_stripe):
    response = post_event(make_event("customer.tax_id.created", {"id": "txi_1"}))

    assert response.status_code == 200
    assert StripeEvent.objects.get().status == StripeEvent.Status.IGNORED


@pytest.mark.django_db
def test_an_older_event_does_not_move_a_subscription_backwards(post_event, subscription):
    now = int(time.time())
    newer = make_event(
        "customer.subscription.updated", snapshot(subscription, status="active"), created=now
    )
    older = make_event(
        "customer.subscription.updated",
        snapshot(subscription, status="incomplete"),
        created=now - 60,
    )

    post_event(newer)
    response = post_event(older)

    assert response.status_code == 200
    assert local(subscription).status == "active"
    assert local(subscription).last_event_created == datetime.fromtimestamp(now, tz=UTC)


@pytest.mark.django_db
def test_a_deleted_subscription_stays_canceled(post_event, subscription):
    now = int(time.time())
    deleted = make_event(
        "customer.subscription.deleted", snapshot(subscription, status="canceled"), created=now
    )
    late_update = make_event(
        "customer.subscription.updated", snapshot(subscription, status="active"), created=now
    )
    late_paid = make_event(
        "invoice.paid", {**_invoice(subscription), "id": "in_other"}, created=now + 5
    )

    for event in (deleted, late_update, late_paid):
        assert post_event(event).status_code == 200

    assert local(subscription).status == "canceled"


def _invoice(sub):
    return {
        "id": sub["latest_invoice"],
        "object": "invoice",
        "customer": sub["customer"],
        "status": "paid",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub["id"], "metadata": {}},
        },
    }


@pytest.mark.django_db
def test_invoice_paid_activates_the_subscription_and_delivers_signup_devices(
    post_event, subscription, signed_up
):
    response = post_event(make_event("invoice.paid", _invoice(subscription)))

    assert response.status_code == 200
    assert local(subscription).status == "active"
    order = DeviceOrder.objects.get(invoice_id=subscription["latest_invoice"])
    assert order.status == DeviceOrder.Status.PAID
    names = list(Device.objects.filter(owner=signed_up.user).values_list("name", flat=True))
    assert names == ["GRO-01 #1", "GRO-01 #2"]


@pytest.mark.django_db
def test_a_failed_renewal_makes_the_subscription_past_due(post_event, subscription):
    now = int(time.time())
    post_event(make_event("invoice.paid", _invoice(subscription), created=now + 10))

    post_event(make_event("invoice.payment_failed", _invoice(subscription), created=now + 20))

    sub = local(subscription)
    assert sub.status == "past_due"
    assert sub.past_due_since == datetime.fromtimestamp(now + 20, tz=UTC)


@pytest.mark.django_db
def test_a_failed_first_invoice_leaves_the_subscription_incomplete(post_event, subscription):
    post_event(make_event("invoice.payment_failed", _invoice(subscription)))

    assert local(subscription).status == "incomplete"


@pytest.mark.django_db
def test_a_failed_payment_intent_fails_its_order(post_event, api, fake_stripe, signed_up):
    api.post("/charge", {"token": "tok_threeDSecure2Required", "quantity": 1}, format="json")
    (intent,) = fake_stripe.payment_intents.values()
    failed = {**intent, "status": "requires_payment_method",
              "last_payment_error": {"message": "Authentication failed."}}  # fmt: skip

    post_event(make_event("payment_intent.payment_failed", failed))

    order = DeviceOrder.objects.get()
    assert (order.status, order.failure_message) == ("failed", "Authentication failed.")


@pytest.mark.django_db
def test_a_handler_failure_is_recorded_answered_500_and_retried(post_event, subscription):
    broken = {k: v for k, v in subscription.items() if k != "status"}
    event = make_event("customer.subscription.updated", broken)

    first = post_event(event)
    retry = post_event(event)

    assert first.status_code == retry.status_code == 500
    stored = StripeEvent.objects.get()
    assert stored.status == StripeEvent.Status.FAILED
    assert "KeyError" in stored.error
    assert stored.attempts == 2


@pytest.mark.django_db
def test_events_about_unknown_customers_are_acknowledged(post_event, fake_stripe):
    other = {"id": "sub_x", "customer": "cus_elsewhere", "status": "active", "items": {}}

    response = post_event(make_event("customer.subscription.created", other))

    assert response.status_code == 200
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_a_delayed_event_does_not_undo_a_cancellation_made_through_the_api(
    api, post_event, subscription
):
    api.post(f"/subscriptions/{subscription['id']}/cancel", {}, format="json")
    delayed = make_event(
        "customer.subscription.updated",
        snapshot(subscription, status="active", cancel_at_period_end=False),
        created=int(time.time()) - 60,
    )

    post_event(delayed)

    assert local(subscription).cancel_at_period_end is True
