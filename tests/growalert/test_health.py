from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client

from growalert.health import heartbeat
from growalert.health.views import format_uptime
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
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "influxdb": "ok", "scheduler": "ok"},
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
@pytest.mark.parametrize("name", ["influxdb", "redis", "postgres"])
def test_readyz_names_a_stopped_dependency_and_recovers_when_it_is_back(
    client: Client, stopped_service: list[str], name: str
) -> None:
    stopped_service.append(name)
    assert services("down", name).returncode == 0

    down = client.get("/readyz")
    deps = client.get("/health/deps")

    assert down.status_code == 503
    assert down.json()["status"] == "not_ready"
    assert down.json()["checks"][name] == "unreachable"
    others = {k: v for k, v in down.json()["checks"].items() if k not in (name, "scheduler")}
    assert set(others.values()) == {"ok"}
    assert deps.status_code == 200
    assert deps.json()["status"] == "degraded"
    assert deps.json()["dependencies"][name]["status"] == "unreachable"

    assert services("up", name).returncode == 0
    stopped_service.remove(name)
    connection.close()

    up = client.get("/readyz")
    assert up.status_code == 200
    assert up.json()["checks"][name] == "ok"


@pytest.mark.django_db
def test_readyz_fails_when_the_scheduler_lags_past_the_threshold(client: Client, settings) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from billing.gating import comp
    from tests.factories import MonitorFactory, UserFactory

    settings.SCHEDULER_LAG_THRESHOLD_SECONDS = 30
    owner = UserFactory()
    comp(owner)  # an unpaid owner's monitors wait on purpose and are not lag
    MonitorFactory(owner=owner, next_due_at=timezone.now() - timedelta(seconds=90))

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["scheduler"] == "lagging"
    assert response.json()["scheduler_lag_seconds"] >= 90


@pytest.mark.django_db
def test_metrics_expose_evaluations_latency_batch_sizes_lag_and_backlog(client: Client) -> None:
    from growalert import metrics

    metrics.record_batch(outcomes={"ok": 3, "firing": 1}, latencies=[0.02, 0.03, 0.2, 0.7])

    body = client.get("/metrics").content.decode()

    assert 'growalert_evaluations_total{outcome="firing"}' in body
    assert 'growalert_evaluation_latency_seconds_bucket{le="0.25"}' in body
    assert "growalert_evaluation_batch_size_count" in body
    assert "growalert_scheduler_lag_seconds 0.0" in body
    assert "growalert_outbox_backlog 0.0" in body
