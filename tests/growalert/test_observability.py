"""/metrics across dependency faults, and the operator told when monitoring is blind."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from growalert.health import heartbeat, monitoring, operator
from growalert.tasks import check_monitoring
from monitors import metrics
from tests.conftest import ROOT, services
from tests.factories import MonitorFactory, UserFactory
from tests.notify.conftest import Inbox, smtp_inbox  # noqa: F401 (fixture)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

GAUGES = (
    "growalert_scheduler_lag_seconds",
    "growalert_scheduler_lag_known",
    "growalert_outbox_backlog",
    "growalert_outbox_backlog_known",
    "growalert_worker_heartbeat_age_seconds",
    "growalert_monitors_in_error_ratio",
    "growalert_dependency_up",
    "growalert_monitoring_blind",
    "growalert_monitoring_blind_reason",
)


def scrape(client: Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def evaluations(samples: Samples, outcome: str) -> float:
    return samples.get(("growalert_evaluations_total", (("outcome", outcome),)), 0.0)


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture(autouse=True)
def _no_episode() -> Iterator[None]:
    operator._client().delete(operator.KEY, operator.LOCK_KEY)
    yield
    if services("status", "redis").returncode == 0:
        operator._client().delete(operator.KEY, operator.LOCK_KEY)


# --- counters --------------------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_counters_are_monotonic_across_a_redis_restart(
    client: Client, stopped_service: list[str]
) -> None:
    """They lived in Redis without persistence and fell from 50,733 to 2,000 with a restart."""
    metrics.record_batch(outcomes={"ok": 7}, latencies=[0.01] * 7)
    before = scrape(client)
    assert evaluations(before, "ok") >= 7

    stopped_service.append("redis")
    assert services("down", "redis").returncode == 0
    during = scrape(client)
    metrics.record_batch(outcomes={"ok": 5}, latencies=[0.02] * 5)  # still counted
    during_later = scrape(client)
    assert services("up", "redis").returncode == 0
    stopped_service.remove("redis")
    after = scrape(client)

    assert evaluations(during, "ok") == evaluations(before, "ok")
    assert evaluations(during_later, "ok") == evaluations(before, "ok") + 5
    assert evaluations(after, "ok") == evaluations(before, "ok") + 5
    count = "growalert_evaluation_latency_seconds_count"
    assert after[(count, ())] == before[(count, ())] + 5
    assert during[("growalert_dependency_up", (("dependency", "redis"),))] == 0.0
    assert after[("growalert_dependency_up", (("dependency", "redis"),))] == 1.0
    assert names(during) == names(before) == names(after)


@pytest.mark.django_db
def test_counts_recorded_by_another_process_are_summed_and_kept_after_it_exits(
    client: Client,
) -> None:
    """Workers are other processes: their counts reach the web process's scrape, and stay in it
    once the worker has exited."""
    before = evaluations(scrape(client), "no_data")

    subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from monitors import metrics; "
            "metrics.record_batch(outcomes={'no_data': 3}, latencies=[0.1, 0.1, 0.1])",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "growalert.settings"},
        check=True,
        timeout=60,
    )

    assert evaluations(scrape(client), "no_data") == before + 3


def test_metrics_use_the_shared_multiprocess_directory(settings) -> None:
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == settings.PROMETHEUS_MULTIPROC_DIR
    metrics.record_schedule_repairs(1)
    files = os.listdir(settings.PROMETHEUS_MULTIPROC_DIR)
    assert f"counter_{os.getpid()}.db" in files


# --- gauges ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_gauge_is_in_a_scrape_when_all_is_well(client: Client) -> None:
    heartbeat.record()

    samples = scrape(client)

    assert set(GAUGES) <= names(samples)
    assert samples[("growalert_scheduler_lag_known", ())] == 1.0
    assert samples[("growalert_outbox_backlog_known", ())] == 1.0
    assert samples[("growalert_monitoring_blind", ())] == 0.0
    for reason in monitoring.REASONS:
        assert samples[("growalert_monitoring_blind_reason", (("reason", reason),))] == 0.0


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_with_postgres_down_the_lag_and_backlog_gauges_are_exported_as_unknown(
    client: Client, stopped_service: list[str]
) -> None:
    heartbeat.record()
    healthy = scrape(client)
    stopped_service.append("postgres")
    assert services("down", "postgres").returncode == 0

    down = scrape(client)

    assert services("up", "postgres").returncode == 0
    stopped_service.remove("postgres")
    connection.close()
    assert names(down) == names(healthy)
    assert math.isnan(down[("growalert_scheduler_lag_seconds", ())])
    assert down[("growalert_scheduler_lag_known", ())] == 0.0
    assert math.isnan(down[("growalert_outbox_backlog", ())])
    assert down[("growalert_outbox_backlog_known", ())] == 0.0
    assert down[("growalert_dependency_up", (("dependency", "postgres"),))] == 0.0
    assert down[("growalert_monitoring_blind", ())] == 1.0
    reason = ("growalert_monitoring_blind_reason", (("reason", "postgres_unreachable"),))
    assert down[reason] == 1.0
    assert scrape(client)[("growalert_scheduler_lag_known", ())] == 1.0


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_with_influxdb_down_metrics_and_deps_say_monitoring_is_blind(
    client: Client, stopped_service: list[str]
) -> None:
    heartbeat.record()
    stopped_service.append("influxdb")
    assert services("down", "influxdb").returncode == 0

    samples = scrape(client)
    deps = client.get("/health/deps").json()
    ready = client.get("/readyz")

    assert samples[("growalert_monitoring_blind", ())] == 1.0
    reason = ("growalert_monitoring_blind_reason", (("reason", "influxdb_unreachable"),))
    assert samples[reason] == 1.0
    assert deps["monitoring"]["blind"] is True
    assert deps["monitoring"]["reasons"] == ["influxdb_unreachable"]
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["checks"]["influxdb"] == "unreachable"


@pytest.mark.django_db
def test_most_monitors_in_error_make_monitoring_blind(client: Client) -> None:
    heartbeat.record()
    owner = UserFactory()
    monitors = [MonitorFactory(owner=owner) for _ in range(5)]
    for monitor in monitors[:2]:
        type(monitor).objects.filter(pk=monitor.pk).update(status="error")
    assert "sources_in_error" not in monitoring.assess().reasons  # 2 of 5

    type(monitors[2]).objects.filter(pk=monitors[2].pk).update(status="error")  # 3 of 5

    samples = scrape(client)
    assert monitoring.assess().reasons == ("sources_in_error",)
    assert samples[("growalert_monitors_in_error_ratio", ())] == pytest.approx(0.6)
    reason = ("growalert_monitoring_blind_reason", (("reason", "sources_in_error"),))
    assert samples[reason] == 1.0


# --- the operator ------------------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_staff_get_one_email_per_blind_episode_and_one_when_it_is_resolved(
    client: Client,
    stopped_service: list[str],
    smtp_inbox: Inbox,  # noqa: F811
    settings,
) -> None:
    settings.MONITORING_BLIND_ALERT_AFTER_MINUTES = 5
    settings.ADMINS = [("ops", "ops@example.com")]
    staff = UserFactory(username="operator", email="operator@example.com", is_staff=True)
    UserFactory(username="customer", email="customer@example.com")  # not staff: not told
    heartbeat.record()
    t0 = 1_000_000.0
    stopped_service.append("influxdb")
    assert services("down", "influxdb").returncode == 0

    assert operator.check(now=t0) == "started"
    assert operator.check(now=t0 + 120) == "ongoing"
    assert smtp_inbox.messages == []  # shorter than the delay: nobody is woken up
    heartbeat.record()
    assert operator.check(now=t0 + 301) == "alerted"
    assert operator.check(now=t0 + 330) == "ongoing"
    heartbeat.record()
    assert operator.check(now=t0 + 900) == "ongoing"

    assert sorted(to for _, tos in smtp_inbox.envelopes for to in tos) == [
        "operator@example.com",
        "ops@example.com",
    ]
    alert = smtp_inbox.messages[0]
    assert "blind" in alert["Subject"]
    assert "influxdb_unreachable" in alert.as_string()
    client.force_login(staff)
    dashboard = client.get("/app/").content.decode()
    assert 'id="monitoring-banner"' in dashboard
    assert "influxdb_unreachable" in dashboard
    assert client.get("/status").json()["status"] == "monitoring_blind"

    assert services("up", "influxdb").returncode == 0
    stopped_service.remove("influxdb")
    heartbeat.record()
    assert operator.check(now=t0 + 960) == "resolved"
    assert operator.check(now=t0 + 990) == "ok"

    assert len(smtp_inbox.messages) == 4  # one alert and one resolved email for each of two
    resolved = smtp_inbox.messages[2]
    assert resolved["Subject"].startswith("[growalert] Resolved")
    assert client.get("/status").json() == {
        "status": "operational",
        "monitoring": {"blind": False},
    }
    assert 'id="monitoring-banner"' not in client.get("/app/").content.decode()


@pytest.mark.django_db
def test_a_short_episode_sends_nothing_and_customers_never_see_the_banner(
    client: Client,
    smtp_inbox: Inbox,  # noqa: F811
    settings,
) -> None:
    settings.ADMINS = [("ops", "ops@example.com")]
    heartbeat._client().delete(heartbeat.KEY)  # no worker heartbeat: blind

    assert operator.check(now=2_000_000.0) == "started"
    customer = UserFactory()
    client.force_login(customer)
    assert 'id="monitoring-banner"' not in client.get("/app/").content.decode()
    heartbeat.record()
    assert operator.check(now=2_000_060.0) == "resolved"

    assert smtp_inbox.messages == []


@pytest.mark.django_db
def test_the_beat_task_runs_the_check(settings) -> None:
    from growalert.celery import app

    heartbeat._client().delete(heartbeat.KEY)
    assert app.conf.beat_schedule["check-monitoring"]["schedule"] == 30.0

    check_monitoring.apply()

    episode = operator.load_episode()
    assert episode is not None
    assert episode.reasons == ["no_worker_heartbeat"]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_with_postgres_down_the_admins_are_still_told(
    stopped_service: list[str],
    smtp_inbox: Inbox,  # noqa: F811
    settings,
) -> None:
    """Staff users live in Postgres; settings.ADMINS is who is left to tell when it is down."""
    settings.MONITORING_BLIND_ALERT_AFTER_MINUTES = 1
    settings.ADMINS = [("ops", "ops@example.com")]
    UserFactory(username="operator", email="operator@example.com", is_staff=True)
    heartbeat.record()
    stopped_service.append("postgres")
    assert services("down", "postgres").returncode == 0

    started = operator.check(now=3_000_000.0)
    alerted = operator.check(now=3_000_061.0)

    assert services("up", "postgres").returncode == 0
    stopped_service.remove("postgres")
    connection.close()
    assert (started, alerted) == ("started", "alerted")
    assert smtp_inbox.envelopes == [(smtp_inbox.envelopes[0][0], ["ops@example.com"])]
    assert "postgres_unreachable" in smtp_inbox.messages[0].as_string()
    heartbeat.record()
    assert operator.check(now=3_000_120.0) == "resolved"
    assert sorted(to for _, tos in smtp_inbox.envelopes[1:] for to in tos) == [
        "operator@example.com",
        "ops@example.com",
    ]


@pytest.mark.django_db
def test_the_operator_command_prints_the_state_and_fails_while_blind() -> None:
    from io import StringIO

    from django.core.management import call_command

    heartbeat.record()
    out = StringIO()
    call_command("monitoring_status", stdout=out)
    assert '"blind": false' in out.getvalue()

    heartbeat._client().delete(heartbeat.KEY)
    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("monitoring_status", stdout=out)
    assert exited.value.code == 1
    assert '"no_worker_heartbeat"' in out.getvalue()
