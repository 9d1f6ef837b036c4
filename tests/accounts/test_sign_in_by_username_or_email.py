"""Sign-in accepts the username or the email address (case-insensitive); an email shared by
two accounts signs nobody in; the label says both."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.test import Client, RequestFactory

from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"


def login_request():
    return RequestFactory().post("/accounts/login/")


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.django_db
def test_the_username_or_the_email_signs_in():
    admin = UserFactory(username="admin", email="Grower@Example.com")

    assert authenticate(login_request(), username="admin", password=PASSWORD) == admin
    assert authenticate(login_request(), username="grower@example.com", password=PASSWORD) == admin
    assert authenticate(login_request(), username="grower@example.com", password="wrong") is None


@pytest.mark.django_db
def test_an_email_two_accounts_share_signs_nobody_in():
    UserFactory(username="one", email="shared@example.com")
    UserFactory(username="two", email="shared@example.com")

    assert authenticate(login_request(), username="shared@example.com", password=PASSWORD) is None


@pytest.mark.django_db
def test_the_login_page_takes_an_email_for_a_plain_username_account():
    UserFactory(username="admin", email="admin@example.com")
    client = Client()

    page = client.get("/accounts/login/")
    assert "Username or email" in page.content.decode()
    response = client.post(
        "/accounts/login/", {"username": "admin@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get("/app/").status_code == 200
