"""The account page against FakeStripe: subscription, next invoice, cancel, portal."""

from __future__ import annotations

import pytest

from billing import services
from billing.models import Customer, Subscription
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscriber(fake_stripe):
    user = UserFactory(username="dora")
    customer, _ = services.customer_ensure(user=user)
    price = fake_stripe.prices[next(iter(fake_stripe.prices))]
    new = services.subscription_create(customer=customer, price_id=price["id"], quantity=0)
    Subscription.objects.filter(pk=new.subscription.pk).update(status="active")
    return user


def test_account_shows_the_subscription_and_the_next_invoice(client_for, subscriber):
    html = client_for(subscriber).get("/app/account").content.decode()
    assert 'data-testid="subscription-status">Active<' in html
    assert "Next invoice: <strong>15.00 USD</strong>" in html
    assert 'action="/customer-portal"' in html
    assert 'id="charge-form"' in html


def test_cancel_ends_the_subscription_at_period_end(client_for, subscriber):
    client = client_for(subscriber)
    response = client.post("/app/account/cancel", follow=True)
    assert "will end at the end of the current period" in response.content.decode()
    subscription = Customer.objects.get(user=subscriber).subscriptions.get()
    assert subscription.cancel_at_period_end


def test_the_portal_button_redirects_to_stripe(client_for, subscriber):
    response = client_for(subscriber).post("/customer-portal", {"returnPath": "/app/account"})
    assert response.status_code == 303
    assert response["Location"].startswith("https://billing.stripe.com/")


def test_without_stripe_and_a_plan_the_account_page_says_who_can_help(client_for, charlie):
    html = client_for(charlie).get("/app/account").content.decode()
    assert "No subscription yet" in html
    assert "its operator can make your account free" in html
    assert 'href="/register"' not in html


def test_without_a_customer_the_account_page_offers_to_subscribe(client_for, charlie, fake_stripe):
    html = client_for(charlie).get("/app/account").content.decode()
    assert "No subscription yet" in html
    assert 'href="/register"' in html
