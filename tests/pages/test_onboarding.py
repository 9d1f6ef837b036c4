"""A visitor learns what growalert does and what it costs at /, and on a deployment without
Stripe registers a free account from one form (no disabled Pay button)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from billing.gating import has_active_service
from billing.models import Customer
from tests.pages.conftest import watch_csp

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def test_the_home_page_shows_the_prices_config_serves(client, fake_stripe):
    page = re.sub(r"<[^>]+>", "", client.get("/").content.decode())

    assert "growalert: 15.00 USD a month" in page
    assert "GRO-01: 49.00 USD once" in page
    assert "Sign up" in page


def test_without_stripe_registration_creates_a_free_account_and_signs_in(client, settings):
    settings.STRIPE_SECRET_KEY = ""
    form = client.get("/register")
    assert "accounts are free" in form.content.decode()
    assert "payments.js" not in form.content.decode()

    response = client.post(
        "/register", {"email": "Grower@Example.com", "password": PASSWORD, "name": "Grace"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/app/"
    user = get_user_model().objects.get(email="grower@example.com")
    assert Customer.objects.get(user=user).comped
    assert has_active_service(user)
    assert client.get("/app/").status_code == 200


def test_a_taken_email_and_a_weak_password_are_errors_next_to_their_fields(client, alice):
    alice.email = "alice@example.com"
    alice.save()

    taken = client.post("/register", {"email": "ALICE@example.com", "password": PASSWORD})
    weak = client.post("/register", {"email": "new@example.com", "password": "password"})

    assert taken.status_code == 400
    assert taken.context["form"].errors["email"] == ["An account with this email already exists."]
    assert weak.status_code == 400
    assert "too common" in " ".join(weak.context["form"].errors["password"])
    assert not get_user_model().objects.filter(email="new@example.com").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1100, 390])
def test_the_visitor_pages_fit_the_screen(browser, live_server, csp_violations, screenshot, width):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}, is_mobile=width < 500
    )
    page = watch_csp(context, csp_violations)
    for path, name in (
        ("/", "home"),
        ("/register", "register-free"),
        ("/accounts/login/", "login"),
    ):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
        screenshot(page, f"{name}-{width}")
    expect(page.get_by_label("Username or email")).to_be_visible()
    context.close()
    assert csp_violations == []
