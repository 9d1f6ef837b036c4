"""Schemathesis over /api/schema: every operation, generated inputs (valid and not), no answer
is a server error and every answer is one the schema documents (status, content type, body).

Driven in-process through Django's WSGI application (the whole middleware stack) with a comped
customer's token; Stripe is the loopback FakeStripe of the billing tests. Outbound HTTP to any
host but loopback goes to a closed proxy port, so a generated webhook or source URL fails fast
instead of reaching the internet (the app must answer that failure, not crash on it).

``SCHEMATHESIS_EXAMPLES`` sets the examples per operation (default 12: the whole run stays
under 3 minutes on a 2-core machine; see docs/testing.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billing.models import Customer
from tests.billing.conftest import fake_stripe  # noqa: F401 (a fixture)
from tests.factories import MonitorFactory, SourceFactory, UserFactory
from tests.fakes.stripe_api import FakeStripe

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Fuzzing (valid and invalid inputs, max_examples each); the coverage phase's exhaustive
# boundary cases would take several minutes here.
CONFIG = schemathesis.Config.from_str("[phases.coverage]\nenabled = false\n")
schema = schemathesis.openapi.from_wsgi(
    "/api/schema?format=json", get_wsgi_application(), config=CONFIG
)


@pytest.fixture
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    """As Django's test client does: a request's end must not close the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(
    db: None,
    fake_stripe: FakeStripe,  # noqa: F811
    no_internet: None,
    keep_test_connection: None,
) -> str:
    """A comped customer with a Stripe customer at the fake, a source and a monitor."""
    user = UserFactory(username="schemathesis")
    stripe_id = fake_stripe._create_customer({"email": user.email})["id"]
    Customer.objects.create(user=user, stripe_customer_id=stripe_id, comped=True)
    MonitorFactory(owner=user, source=SourceFactory(owner=user))
    return str(Token.objects.create(user=user).key)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_what_the_schema_documents(case: Any, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
