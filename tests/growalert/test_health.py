from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client

from growalert.health import heartbeat
from growalert.health.views import format_uptime
from tests.billing.conftest import fake_stripe  # noqa: F401 (fixture)
from tests.conftest import services


@pytest.fixture
def client() -> Client:
    return Client()


def test_healthz_reports_ok_and_uptime_without_touching_dependencies(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert re.fullmatch(r"(\d+h)?(\d+m)?\d+s", body["uptime"])
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.parametrize(
    ("seconds", "expected"), [(0, "0s"), (59.9, "59s"), (83, "1m23s"), (7205, "2h0m5s")]
)
def test_uptime_is_formatted_like_a_go_duration(seconds: float, expected: str) -> None:
    assert format_uptime(seconds) == expected


@pytest.mark.django_db
def test_readyz_is_ready_when_every_dependency_answers(client: Client) -> None:
    heartbeat.record()

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "influxdb": "ok"},
        "required": ["postgres"],
        "degraded": [],
        "monitoring": {"blind": False, "reasons": []},
        "scheduler_lag_seconds": 0.0,
    }


@pytest.mark.django_db
def test_health_deps_reports_latency_and_version_of_each_dependency(client: Client) -> None:
    heartbeat.record()

    response = client.get("/health/deps")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    deps = body["dependencies"]
    assert deps["postgres"]["version"].startswith("15")
    assert deps["redis"]["version"].startswith("7")
    assert deps["influxdb"]["version"].startswith("1.")
    for name in ("postgres", "redis", "influxdb"):
        assert deps[name]["status"] == "ok"
        assert 0 <= deps[name]["latency_ms"] < 2000
    assert deps["celery"]["status"] == "ok"
    assert deps["celery"]["last_heartbeat_age_s"] < 5


def test_health_endpoints_refuse_other_methods(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["influxdb", "redis"])
def test_readyz_stays_ready_without_influxdb_or_redis_and_says_so(
    client: Client, stopped_service: list[str], name: str
) -> None:
    """The web tier serves pages and the API without them: taking it out of the load balancer
    would not help. /readyz says what is degraded; monitoring blind is its own signal."""
    from billing.gating import comp
    from tests.factories import MonitorFactory, UserFactory

    heartbeat.record()
    user = UserFactory()
    comp(user)
    MonitorFactory(owner=user)
    user_client = Client()
    user_client.force_login(user)
    stopped_service.append(name)
    assert services("down", name).returncode == 0

    down = client.get("/readyz")
    deps = client.get("/health/deps")
    page = client.get("/accounts/login/")
    dashboard = user_client.get("/app/")
    api = user_client.get("/monitors")

    assert down.status_code == 200
    assert down.json()["status"] == "ready"
    assert down.json()["checks"][name] == "unreachable"
    assert down.json()["degraded"] == [name]
    assert down.json()["monitoring"]["blind"] is True
    assert f"{name}_unreachable" in down.json()["monitoring"]["reasons"]
    assert page.status_code == 200
    assert dashboard.status_code == 200
    assert api.status_code == 200
    assert len(api.json()["results"]) == 1
    assert deps.status_code == 200
    assert deps.json()["status"] == "degraded"
    assert deps.json()["dependencies"][name]["status"] == "unreachable"
    assert deps.json()["monitoring"]["blind"] is True
    assert f"{name}_unreachable" in deps.json()["monitoring"]["reasons"]

    assert services("up", name).returncode == 0
    stopped_service.remove(name)
    heartbeat.record()

    up = client.get("/readyz")
    assert up.status_code == 200
    assert up.json()["checks"][name] == "ok"
    assert up.json()["degraded"] == []
    assert up.json()["monitoring"] == {"blind": False, "reasons": []}


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_readyz_is_not_ready_without_postgres_and_recovers(
    client: Client, stopped_service: list[str]
) -> None:
    stopped_service.append("postgres")
    assert services("down", "postgres").returncode == 0

    down = client.get("/readyz")
    deps = client.get("/health/deps")

    assert down.status_code == 503
    assert down.json()["status"] == "not_ready"
    assert down.json()["checks"] == {"postgres": "unreachable", "redis": "ok", "influxdb": "ok"}
    assert "postgres_unreachable" in down.json()["monitoring"]["reasons"]
    assert deps.status_code == 200
    assert deps.json()["dependencies"]["postgres"]["status"] == "unreachable"
    assert deps.json()["monitoring"]["scheduler_lag_seconds"] is None

    assert services("up", "postgres").returncode == 0
    stopped_service.remove("postgres")
    connection.close()

    up = client.get("/readyz")
    assert up.status_code == 200
    assert up.json()["checks"]["postgres"] == "ok"


@pytest.mark.django_db
def test_a_lagging_scheduler_makes_monitoring_late_not_the_web_tier_unready(
    client: Client, settings
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from billing.gating import comp
    from tests.factories import MonitorFactory, UserFactory

    heartbeat.record()
    settings.SCHEDULER_LAG_THRESHOLD_SECONDS = 30
    owner = UserFactory()
    comp(owner)  # an unpaid owner's monitors wait on purpose and are not lag
    MonitorFactory(owner=owner, next_due_at=timezone.now() - timedelta(seconds=90))

    response = client.get("/readyz")
    deps = client.get("/health/deps").json()
    scrape = client.get("/metrics").content.decode()

    assert response.status_code == 200
    assert response.json()["monitoring"] == {"blind": True, "reasons": ["scheduler_lag"]}
    assert response.json()["scheduler_lag_seconds"] >= 90
    assert deps["monitoring"]["reasons"] == ["scheduler_lag"]
    assert "growalert_monitoring_blind 1.0" in scrape
    assert 'growalert_monitoring_blind_reason{reason="scheduler_lag"} 1.0' in scrape


@pytest.mark.django_db
def test_metrics_expose_evaluations_latency_batch_sizes_lag_and_backlog(client: Client) -> None:
    from monitors import metrics

    metrics.record_batch(outcomes={"ok": 3, "firing": 1}, latencies=[0.02, 0.03, 0.2, 0.7])

    body = client.get("/metrics").content.decode()

    assert 'growalert_evaluations_total{outcome="firing"}' in body
    assert 'growalert_evaluation_latency_seconds_bucket{le="0.25"}' in body
    assert "growalert_evaluation_batch_size_count" in body
    assert "growalert_scheduler_lag_seconds 0.0" in body
    assert "growalert_outbox_backlog 0.0" in body


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_prices_are_read_from_stripe_when_the_cache_redis_is_down(
    stopped_service: list[str],
    fake_stripe,  # noqa: F811
) -> None:
    """The web tier serves without Redis (which is why /readyz does not require it): the price
    cache is skipped instead of failing the registration and account pages."""
    from billing.selectors import price_catalog

    stopped_service.append("redis")
    assert services("down", "redis").returncode == 0

    catalog = price_catalog()

    assert services("up", "redis").returncode == 0  # before fake_stripe's teardown uses the cache
    stopped_service.remove("redis")
    assert [p["lookup_key"] for p in catalog.subscription] == ["growalert_monthly"]
    assert catalog.device is not None
