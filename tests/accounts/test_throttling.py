"""API rate limits, counted in the real Redis and shared by every app instance."""

from __future__ import annotations

import socket
import time

import pytest
from rest_framework.test import APIClient

from accounts import throttling
from accounts.services import api_token_create
from billing.gating import comp
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    user = UserFactory(username="alice")
    comp(user)
    return user


@pytest.fixture(autouse=True)
def _own_connection():
    throttling._redis.cache_clear()
    throttling._redis_down_until = 0.0
    yield
    throttling._redis.cache_clear()
    throttling._redis_down_until = 0.0


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_over_its_rate_the_api_answers_429_with_retry_after(alice, settings) -> None:
    settings.API_RATE_LIMIT = "3/min"
    _, token = api_token_create(owner=alice, name="script")
    client = bearer(token)

    answers = [client.get("/monitors") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60
    assert "throttled" in answers[-1].json()["detail"].lower()


def test_two_app_instances_share_one_count(alice, settings) -> None:
    """Two clients, each through its own Redis connection (as two workers or hosts have)."""
    settings.API_RATE_LIMIT = "4/hour"
    _, first_token = api_token_create(owner=alice, name="one")
    _, second_token = api_token_create(owner=alice, name="two")

    first = [bearer(first_token).get("/monitors").status_code for _ in range(2)]
    throttling._redis.cache_clear()  # a new connection: another process
    second = [bearer(second_token).get("/monitors").status_code for _ in range(3)]

    assert first == [200, 200]
    assert second == [200, 200, 429]  # per user, whichever token: more tokens, not more calls


def test_session_and_token_requests_of_one_user_count_together(alice, settings) -> None:
    settings.API_RATE_LIMIT = "2/min"
    _, token = api_token_create(owner=alice, name="script")
    browser = APIClient()
    browser.force_login(alice)

    assert browser.get("/monitors").status_code == 200
    assert bearer(token).get("/monitors").status_code == 200
    assert browser.get("/monitors").status_code == 429


def test_without_redis_the_api_still_answers(alice, settings) -> None:
    settings.API_RATE_LIMIT = "1/min"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    _, token = api_token_create(owner=alice, name="script")

    assert [bearer(token).get("/monitors").status_code for _ in range(2)] == [200, 200]


def test_a_hung_redis_costs_one_timeout_not_one_per_request(alice, settings) -> None:
    hung = socket.socket()  # accepts connections (the kernel's backlog), never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    settings.API_RATE_LIMIT = "1/min"
    settings.REDIS_URL = f"redis://127.0.0.1:{hung.getsockname()[1]}/0"
    _, token = api_token_create(owner=alice, name="script")
    bearer(token).get("/monitors")  # waits for the socket timeout once

    started = time.monotonic()
    answers = [bearer(token).get("/monitors").status_code for _ in range(3)]

    assert answers == [200, 200, 200]
    assert time.monotonic() - started < 0.9  # Redis is not asked again for a while
    hung.close()


def test_rates_read_as_count_per_period() -> None:
    assert throttling.parse_rate("1200/min") == (1200, 60)
    assert throttling.parse_rate("10/s") == (10, 1)
    assert throttling.parse_rate("5000/day") == (5000, 86400)
    assert throttling.parse_rate("off") is None
    with pytest.raises(ValueError, match="use <count>"):
        throttling.parse_rate("lots")
