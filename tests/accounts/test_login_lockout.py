"""Sign-in lock-out (django-axes, counted in the real Redis): per account and per address,
with a message on the login page, ending by itself after the cool-off."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client, RequestFactory

from accounts.client_ip import client_address
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice():
    return UserFactory(username="alice")


def sign_in(username: str, password: str, address: str = "10.0.0.1"):
    return Client().post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_repeated_wrong_passwords_lock_the_account_with_a_message(alice, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    wrong = [sign_in("alice", "nope", f"10.0.0.{i}").status_code for i in range(3)]

    locked = sign_in("alice", PASSWORD, "10.9.9.9")  # the right password, from elsewhere

    assert wrong == [200, 200, 429]
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "15 minutes" in locked.content.decode()
    assert "_auth_user_id" not in locked.client.session


def test_repeated_failures_from_one_address_lock_that_address(alice, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for name in ("mallory", "trent", "victor"):
        sign_in(name, "guess", "10.0.0.7")

    assert sign_in("alice", PASSWORD, "10.0.0.7").status_code == 429
    assert sign_in("alice", PASSWORD, "10.0.0.8").status_code == 302  # alice elsewhere is fine


def test_the_lock_out_ends_by_itself_after_the_cool_off(alice, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    for _ in range(2):
        sign_in("alice", "nope")
    assert sign_in("alice", PASSWORD).status_code == 429

    time.sleep(1.5)  # the counters expire in Redis: no unlock step

    assert sign_in("alice", PASSWORD).status_code == 302


def test_a_success_clears_earlier_failures(alice, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    sign_in("alice", "nope")
    sign_in("alice", "nope")
    assert sign_in("alice", PASSWORD).status_code == 302

    assert [sign_in("alice", "nope").status_code for _ in range(2)] == [200, 200]


def test_x_forwarded_for_counts_only_behind_a_configured_proxy(settings) -> None:
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9"
    )

    settings.TRUSTED_PROXY_HOPS = 0
    assert client_address(request) == "10.0.0.2"  # a client may write any X-Forwarded-For
    settings.TRUSTED_PROXY_HOPS = 1
    assert client_address(request) == "203.0.113.9"  # what our proxy appended
    settings.TRUSTED_PROXY_HOPS = 3
    assert client_address(request) == "10.0.0.2"  # fewer hops than proxies: not believed
