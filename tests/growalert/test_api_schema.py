"""Schemathesis over /api/schema: every operation, generated inputs (valid and not), no answer
is a server error and every answer is one the schema documents (status, content type, body).

Driven in-process through Django's WSGI application (the whole middleware stack) with a comped
customer's token; Stripe is the loopback FakeStripe of the billing tests. Outbound HTTP to any
host but loopback goes to a closed proxy port, so a generated webhook or source URL fails fast
instead of reaching the internet (the app must answer that failure, not crash on it).

``SCHEMATHESIS_EXAMPLES`` sets the examples per operation (default 12: 44 operations took
99 s, 119 s with start-up, on a shared 2-core machine; see docs/errors.md)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import api_token_create
from billing.models import Customer, Subscription
from devices.models import Device
from monitors import escalation_policies
from monitors.models import Incident, Silence
from tests.billing.conftest import fake_stripe  # noqa: F401 (a fixture)
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory, UserFactory
from tests.fakes.stripe_api import FakeStripe

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Fuzzing (valid and invalid inputs, max_examples each); the coverage phase's exhaustive
# boundary cases would take several minutes here (SCHEMATHESIS_COVERAGE=1 runs them too).
COVERAGE = os.environ.get("SCHEMATHESIS_COVERAGE") == "1"
CONFIG = schemathesis.Config.from_str(f"[phases.coverage]\nenabled = {str(COVERAGE).lower()}\n")
COUNTER = itertools.count()
SEEN: dict[str, set[int]] = {}  # operation -> the statuses it answered
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
def owned(
    db: None,
    fake_stripe: FakeStripe,  # noqa: F811
    no_internet: None,
    keep_test_connection: None,
    settings: Any,
) -> dict[str, Any]:
    """A comped customer (a Stripe customer at the fake, a subscription) with one object of each
    kind; its token and the objects' ids, for half the generated requests' path parameters."""
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the channel's target: a closed port
    user = UserFactory(username="schemathesis")
    stripe_id = fake_stripe._create_customer({"email": user.email})["id"]
    customer = Customer.objects.create(user=user, stripe_customer_id=stripe_id, comped=True)
    price = fake_stripe.monthly["id"]  # type: ignore[attr-defined]
    sub = fake_stripe._create_subscription({"customer": stripe_id, "items": [{"price": price}]})
    Subscription.objects.create(
        customer=customer, stripe_subscription_id=sub["id"], status="active", price_id=price
    )
    monitor = MonitorFactory(owner=user, source=SourceFactory(owner=user))
    now = timezone.now()
    channel = ChannelFactory(owner=user)
    policy = escalation_policies.policy_save(
        owner=user,
        data=escalation_policies.PolicyInput(
            name="on call", steps=[escalation_policies.StepInput(5, [channel])]
        ),
    )
    ids = {
        "/monitors/": monitor.pk,
        "/sources/": monitor.source_id,
        "/channels/": channel.pk,
        "/escalation-policies/": policy.pk,
        "/incidents/": Incident.objects.create(monitor=monitor, opened_at=now).pk,
        "/silences/": Silence.objects.create(owner=user, ends_at=now + timedelta(hours=1)).pk,
        "/devices/": Device.objects.create(
            owner=user, name="GRO-01", ingest_key_prefix="k", ingest_key_hash="0" * 64
        ).pk,
        "/subscriptions/": sub["id"],
        # a token of its own to revoke (not the one the requests authenticate with)
        "/tokens/": api_token_create(owner=user, name="to revoke")[0].pk,
    }
    return {"token": api_token_create(owner=user, name="schemathesis")[1], "ids": ids}


def use_owned_ids(case: Any, ids: dict[str, Any]) -> None:
    """Every other request with a path parameter names one of the customer's own objects
    (random ids would almost always answer 404 and test nothing behind it)."""
    if not case.path_parameters or next(COUNTER) % 2:
        return
    for prefix, value in ids.items():
        if case.operation.path.startswith(prefix):
            name = next(iter(case.path_parameters))
            case.path_parameters[name] = value


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_what_the_schema_documents(
    case: Any, owned: dict[str, Any]
) -> None:
    use_owned_ids(case, owned["ids"])
    headers = {"Authorization": f"Token {owned['token']}"}
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    SEEN.setdefault(case.operation.label, set()).add(response.status_code)
    # The one 5xx by design: a test delivery whose target failed is a 502 (docs/notifications.md)
    if (case.operation.label, response.status_code) != ("POST /channels/{id}/test", 502):
        assert response.status_code < 500, response.text[:500]


def test_the_run_was_authenticated_and_most_operations_succeeded_at_least_once() -> None:
    """Without this, a run where every request was refused (401) would pass vacuously."""
    if not SEEN:
        pytest.skip("the schemathesis test did not run (deselected)")
    assert not any(401 in codes for codes in SEEN.values()), [
        label for label, codes in SEEN.items() if 401 in codes
    ]
    succeeded = [label for label, codes in SEEN.items() if any(c < 300 for c in codes)]
    # Generated bodies rarely make a valid channel, charge or subscription (their own tests
    # create them): two operations in three succeeding at least once shows the run got through.
    assert len(succeeded) >= 2 / 3 * len(SEEN), sorted(set(SEEN) - set(succeeded))
