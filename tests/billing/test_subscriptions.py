from __future__ import annotations

import pytest

from billing.models import DeviceOrder, Subscription
from tests.billing.conftest import DEVICE_CENTS


def subscribe(api, fake_stripe, **extra):
    body = {"priceId": fake_stripe.monthly["id"], **extra}
    return api.post("/create-subscription", body, format="json")


@pytest.mark.django_db
def test_it_creates_an_incomplete_subscription_and_returns_the_client_secret(
    api, fake_stripe, signed_up
):
    response = subscribe(api, fake_stripe)

    assert response.status_code == 200
    body = response.json()
    sub = fake_stripe.subscriptions[body["subscriptionId"]]
    invoice = fake_stripe.invoices[sub["latest_invoice"]]
    assert body["clientSecret"] == invoice["_confirmation_secret"]["client_secret"]
    local = Subscription.objects.get(stripe_subscription_id=body["subscriptionId"])
    assert local.customer == signed_up
    assert local.status == Subscription.Status.INCOMPLETE
    assert local.price_id == fake_stripe.monthly["id"]
    assert local.current_period_end is not None


@pytest.mark.django_db
def test_it_sends_what_stripe_needs_for_default_incomplete(api, fake_stripe, signed_up):
    subscribe(api, fake_stripe)

    (request,) = fake_stripe.sent("POST", "/v1/subscriptions")
    assert request.params["customer"] == signed_up.stripe_customer_id
    assert request.params["items"] == [{"price": fake_stripe.monthly["id"]}]
    assert request.params["payment_behavior"] == "default_incomplete"
    assert request.params["payment_settings"] == {"save_default_payment_method": "on_subscription"}
    assert request.params["expand"] == ["latest_invoice.confirmation_secret"]
    assert "add_invoice_items" not in request.params
    assert request.header("Idempotency-Key") == (
        f"create-subscription:{signed_up.stripe_customer_id}:0:{fake_stripe.monthly['id']}:0"
    )
    assert request.header("Stripe-Version") == "2026-10-28.endive"


@pytest.mark.django_db
def test_devices_ordered_at_signup_go_on_the_first_invoice(api, fake_stripe, signed_up):
    response = subscribe(api, fake_stripe, quantity=3)

    (request,) = fake_stripe.sent("POST", "/v1/subscriptions")
    assert request.params["add_invoice_items"] == [
        {"price": fake_stripe.device["id"], "quantity": "3"}
    ]
    sub = fake_stripe.subscriptions[response.json()["subscriptionId"]]
    order = DeviceOrder.objects.get(customer=signed_up)
    assert order.invoice_id == sub["latest_invoice"]
    assert (order.quantity, order.amount, order.currency) == (3, 3 * DEVICE_CENTS, "usd")
    assert order.status == DeviceOrder.Status.PENDING


@pytest.mark.django_db
def test_an_unknown_price_is_a_400_without_calling_stripe(api, fake_stripe, signed_up):
    response = api.post("/create-subscription", {"priceId": "price_nope"}, format="json")

    assert response.status_code == 400
    assert "price_nope" in response.json()["error"]["message"]
    assert fake_stripe.sent("POST", "/v1/subscriptions") == []


@pytest.mark.django_db
def test_an_inactive_price_is_a_400(api, fake_stripe, signed_up):
    fake_stripe.monthly["active"] = False

    response = subscribe(api, fake_stripe)

    assert response.status_code == 400
    assert fake_stripe.sent("POST", "/v1/subscriptions") == []


@pytest.mark.django_db
def test_a_price_that_is_not_a_subscription_price_is_a_400(api, fake_stripe, signed_up):
    response = api.post(
        "/create-subscription", {"priceId": fake_stripe.device["id"]}, format="json"
    )

    assert response.status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("quantity", [-1, 101, "many"])
def test_a_bad_quantity_is_a_400(api, fake_stripe, signed_up, quantity):
    response = subscribe(api, fake_stripe, quantity=quantity)

    assert response.status_code == 400
    assert "quantity" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_without_a_customer_it_is_a_401(api, fake_stripe):
    response = subscribe(api, fake_stripe)

    assert response.status_code == 401
    assert "create-customer" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_a_second_live_subscription_is_refused(api, fake_stripe, signed_up):
    first = subscribe(api, fake_stripe).json()["subscriptionId"]
    Subscription.objects.filter(stripe_subscription_id=first).update(status="active")

    response = subscribe(api, fake_stripe)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "already_subscribed"


@pytest.mark.django_db
def test_it_lists_the_customers_subscriptions(api, fake_stripe, signed_up):
    sub_id = subscribe(api, fake_stripe).json()["subscriptionId"]

    body = api.get("/subscriptions").json()

    assert [s["id"] for s in body["subscriptions"]] == [sub_id]
    assert body["subscriptions"][0]["status"] == "incomplete"


@pytest.mark.django_db
def test_it_cancels_at_period_end_by_default(api, fake_stripe, signed_up):
    sub_id = subscribe(api, fake_stripe).json()["subscriptionId"]
    Subscription.objects.filter(stripe_subscription_id=sub_id).update(status="active")

    response = api.post(f"/subscriptions/{sub_id}/cancel", {}, format="json")

    assert response.status_code == 200
    assert response.json()["subscription"]["cancel_at_period_end"] is True
    (request,) = fake_stripe.sent("POST", f"/v1/subscriptions/{sub_id}")
    assert request.params == {"cancel_at_period_end": "true"}
    assert request.header("Idempotency-Key") == f"cancel-subscription:{sub_id}:period-end"


@pytest.mark.django_db
def test_it_cancels_now_when_asked(api, fake_stripe, signed_up):
    sub_id = subscribe(api, fake_stripe).json()["subscriptionId"]

    response = api.post(f"/subscriptions/{sub_id}/cancel", {"atPeriodEnd": False}, format="json")

    assert response.status_code == 200
    assert response.json()["subscription"]["status"] == "canceled"
    assert fake_stripe.sent("DELETE", f"/v1/subscriptions/{sub_id}")
    again = api.post(f"/subscriptions/{sub_id}/cancel", {"atPeriodEnd": False}, format="json")
    assert again.status_code == 400


@pytest.mark.django_db
def test_a_cancellation_at_period_end_can_be_undone(api, fake_stripe, signed_up):
    sub_id = subscribe(api, fake_stripe).json()["subscriptionId"]
    api.post(f"/subscriptions/{sub_id}/cancel", {}, format="json")

    response = api.post(f"/subscriptions/{sub_id}/resume", {}, format="json")

    assert response.json()["subscription"]["cancel_at_period_end"] is False


@pytest.mark.django_db
def test_nobody_cancels_another_customers_subscription(
    api, fake_stripe, signed_up, stripe_customer
):
    sub_id = subscribe(api, fake_stripe).json()["subscriptionId"]
    bob = stripe_customer(username="bob")
    api.force_authenticate(bob.user)

    response = api.post(f"/subscriptions/{sub_id}/cancel", {}, format="json")

    assert response.status_code == 404
    assert fake_stripe.sent("POST", f"/v1/subscriptions/{sub_id}") == []


@pytest.mark.django_db
def test_it_previews_the_next_invoice(api, fake_stripe, signed_up):
    sub_id = subscribe(api, fake_stripe).json()["subscriptionId"]
    Subscription.objects.filter(stripe_subscription_id=sub_id).update(status="active")

    response = api.get("/invoice-preview")

    assert response.status_code == 200
    invoice = response.json()["invoice"]
    assert invoice["amount_due"] == fake_stripe.monthly["unit_amount"]
    (request,) = fake_stripe.sent("POST", "/v1/invoices/create_preview")
    assert request.params == {
        "customer": signed_up.stripe_customer_id,
        "subscription": sub_id,
    }
    assert request.header("Idempotency-Key").startswith(f"invoice-preview:{sub_id}:")


@pytest.mark.django_db
def test_it_opens_the_customer_portal(api, fake_stripe, signed_up, settings):
    settings.SITE_URL = "https://growalert.example"

    response = api.post("/customer-portal", {"returnPath": "/account"}, format="json")

    assert response.status_code == 200
    assert response.json()["url"].startswith("https://billing.stripe.com/p/session/")
    (request,) = fake_stripe.sent("POST", "/v1/billing_portal/sessions")
    assert request.params["return_url"] == "https://growalert.example/account"


@pytest.mark.django_db
def test_the_customer_portal_redirects_a_form_post(api, fake_stripe, signed_up):
    response = api.post("/customer-portal", {})

    assert response.status_code == 303
    assert response["Location"].startswith("https://billing.stripe.com/")


@pytest.mark.django_db
def test_the_portal_return_path_cannot_leave_the_site(api, fake_stripe, signed_up):
    response = api.post("/customer-portal", {"returnPath": "//evil.example"}, format="json")

    assert response.status_code == 400
