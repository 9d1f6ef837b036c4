"""Page fixtures: alice (owner, comped), bob (another customer), charlie (no service)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from billing.gating import comp
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(db: None) -> Any:
    user = UserFactory(username="alice")
    comp(user)
    return user


@pytest.fixture
def bob(db: None) -> Any:
    user = UserFactory(username="bob")
    comp(user)
    return user


@pytest.fixture
def charlie(db: None) -> Any:
    return UserFactory(username="charlie")


@pytest.fixture
def client_for() -> Any:
    def make(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make
