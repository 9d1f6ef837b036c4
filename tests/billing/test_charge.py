from __future__ import annotations

import pytest

from billing.models import DeviceOrder
from devices.models import Device
from tests.billing.conftest import DEVICE_CENTS
from tests.fakes.stripe_api import make_event


def charge(api, token="tok_visa", quantity=2):  # noqa: S107 (a Stripe test token)
    return api.post("/charge", {"token": token, "quantity": quantity}, format="json")


@pytest.mark.django_db
def test_it_charges_the_server_computed_amount_and_returns_the_charge(api, fake_stripe, signed_up):
    response = charge(api, quantity=2)

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "charge"
    assert body["amount"] == 2 * DEVICE_CENTS
    assert body["paid"] is True
    (request,) = fake_stripe.sent("POST", "/v1/payment_intents")
    assert request.params["amount"] == str(2 * DEVICE_CENTS)
    assert request.params["currency"] == "usd"
    assert request.params["customer"] == signed_up.stripe_customer_id
    assert request.params["confirm"] == "true"
    assert request.params["expand"] == ["latest_charge"]


@pytest.mark.django_db
def test_it_turns_the_token_into_a_payment_method_first(api, fake_stripe, signed_up):
    charge(api)

    (method_request,) = fake_stripe.sent("POST", "/v1/payment_methods")
    assert method_request.params == {"type": "card", "card": {"token": "tok_visa"}}
    (intent_request,) = fake_stripe.sent("POST", "/v1/payment_intents")
    order = DeviceOrder.objects.get()
    assert method_request.header("Idempotency-Key") == f"device-order:{order.pk}:payment-method"
    assert intent_request.header("Idempotency-Key") == f"device-order:{order.pk}:payment-intent"


@pytest.mark.django_db
def test_a_paid_order_is_recorded_with_its_devices(api, fake_stripe, signed_up):
    charge(api, quantity=2)
    charge(api, token="tok_mastercard", quantity=1)

    orders = DeviceOrder.objects.order_by("id")
    assert [(o.quantity, o.amount, o.status) for o in orders] == [
        (2, 2 * DEVICE_CENTS, "paid"),
        (1, DEVICE_CENTS, "paid"),
    ]
    devices = Device.objects.filter(owner=signed_up.user).order_by("id")
    assert [d.name for d in devices] == ["GRO-01 #1", "GRO-01 #2", "GRO-01 #3"]
    assert all(d.ingest_key_prefix.startswith("gro_") for d in devices)
    assert len({d.ingest_key_hash for d in devices}) == 3


@pytest.mark.django_db
def test_a_repeated_request_with_the_same_token_pays_once(api, fake_stripe, signed_up):
    first = charge(api)
    second = charge(api)

    assert first.json()["id"] == second.json()["id"]
    assert DeviceOrder.objects.count() == 1
    assert Device.objects.count() == 2
    assert len(fake_stripe.payment_intents) == 1


@pytest.mark.django_db
def test_a_decline_is_a_402_with_the_cards_message(api, fake_stripe, signed_up):
    response = charge(api, token="tok_chargeDeclinedInsufficientFunds")

    assert response.status_code == 402
    error = response.json()["error"]
    assert error["message"] == "Your card has insufficient funds."
    assert error["code"] == "card_declined"
    assert error["declineCode"] == "insufficient_funds"
    order = DeviceOrder.objects.get()
    assert order.status == DeviceOrder.Status.FAILED
    assert order.failure_message == "Your card has insufficient funds."
    assert (order.payment_intent_id or "").startswith("pi_")
    assert not Device.objects.exists()


@pytest.mark.django_db
def test_3d_secure_returns_the_client_secret_and_the_webhook_completes_it(
    api, fake_stripe, signed_up, post_event
):
    response = charge(api, token="tok_threeDSecure2Required", quantity=1)

    assert response.status_code == 200
    body = response.json()
    assert body["requiresAction"] is True
    (intent,) = fake_stripe.payment_intents.values()
    assert body["clientSecret"] == intent["client_secret"]
    order = DeviceOrder.objects.get()
    assert order.status == DeviceOrder.Status.REQUIRES_ACTION
    assert not Device.objects.exists()

    succeeded = {**intent, "status": "succeeded"}
    assert post_event(make_event("payment_intent.succeeded", succeeded)).status_code == 200

    order.refresh_from_db()
    assert order.status == DeviceOrder.Status.PAID
    assert [d.name for d in Device.objects.all()] == ["GRO-01 #1"]


@pytest.mark.django_db
@pytest.mark.parametrize("quantity", [0, -3, 101, "2.5", None])
def test_the_quantity_must_be_a_sane_positive_integer(api, fake_stripe, signed_up, quantity):
    response = charge(api, quantity=quantity)

    assert response.status_code == 400
    assert "quantity" in response.json()["error"]["fields"]
    assert fake_stripe.sent_to("POST", "/v1/payment") == []


@pytest.mark.django_db
def test_a_token_must_look_like_one(api, fake_stripe, signed_up):
    response = charge(api, token="pm_card_visa&amount=1")

    assert response.status_code == 400
    assert fake_stripe.requests == [r for r in fake_stripe.requests if r.path == "/v1/customers"]


@pytest.mark.django_db
def test_charge_without_a_customer_is_a_401(api, fake_stripe):
    assert charge(api).status_code == 401


@pytest.mark.django_db
def test_the_ingest_key_is_shown_once_and_stored_hashed(api, fake_stripe, signed_up):
    charge(api, quantity=1)
    device = Device.objects.get()

    response = api.post(f"/devices/{device.pk}/ingest-key")

    key = response.json()["ingestKey"]
    device.refresh_from_db()
    assert key.startswith(device.ingest_key_prefix)
    assert key not in str(api.get("/devices").json())
    assert len(device.ingest_key_hash) == 64
