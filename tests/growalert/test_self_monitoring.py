"""deploy/: the Prometheus rules and the Grafana dashboard name only what /metrics really
exports (checked against a real scrape after evaluations, deliveries and a prune ran), and the
rules pass promtool's check and its unit tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from devices import hosted
from devices import services as device_services
from devices.ingest import queue as ingest_queue
from monitors import tasks
from monitors.evaluate import dispatch
from monitors.models import Notification, Source
from monitors.notify import delivery
from tests.factories import ChannelFactory, MonitorFactory, SourceFactory, UserFactory
from tests.notify.conftest import Receiver, receiver  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "growalert-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "growalert-rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "growalert-dashboard.json"
# Series Prometheus makes itself, not the app.
PROMETHEUS_OWN = {"up"}
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
PROMQL_WORDS = {
    "sum", "by", "without", "rate", "increase", "histogram_quantile", "or", "and", "unless",
    "on", "ignoring", "group_left", "group_right", "avg", "max", "min", "count", "le",
}  # fmt: skip


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(metric name, [(label, operator, value)]) for each series selector in ``expr``."""
    found = []
    for name, braces in SELECTOR.findall(expr):
        if name in PROMQL_WORDS or not (name.startswith("growalert_") or name in PROMETHEUS_OWN):
            continue
        found.append((name, MATCHER.findall(braces or "")))
    return found


def scraped(client: Client) -> dict[str, list[dict[str, str]]]:
    """Every sample name in a real scrape with the label sets it has."""
    series: dict[str, list[dict[str, str]]] = defaultdict(list)
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        for sample in family.samples:
            series[sample.name].append(sample.labels)
    return series


@pytest.fixture
def refused_reading(settings) -> Iterator[None]:
    """A batch InfluxDB cannot read, planted in the ingest stream (no validated batch looks like
    it) and flushed: the flusher counts the refusal."""
    settings.HOSTED_DATABASE_PREFIX = f"t{uuid.uuid4().hex[:10]}_acct_"
    owner = UserFactory()
    device, _ = device_services.device_add(owner=owner, name="Bench 1")
    ingest_queue.enqueue(
        device_id=device.pk,
        owner_id=owner.pk,
        lines="not line protocol at all",
        points=1,
        status={},
        replay_key=None,
    )
    flusher = ingest_queue.Flusher(consumer="self-monitoring")
    try:
        while flusher.flush_once():
            pass
    finally:
        flusher.close()
    yield
    with hosted.client() as conn:
        database = hosted.database_name(owner.pk)
        conn.query(f'DROP DATABASE "{database}"', database=database, method="POST")


@pytest.fixture
def exercised(receiver: Receiver, settings, refused_reading: None) -> None:  # noqa: F811
    """Evaluations that error on a customer's and on a hosted source, deliveries that are sent,
    retried and given up, a prune and a device reading InfluxDB refused: every labelled series
    the rules name then exists."""
    settings.NOTIFY_RETRY_BASE_SECONDS = 0.01
    customer = SourceFactory(url="http://127.0.0.1:9", timeout_seconds=0.5)
    hosted = SourceFactory(url="http://127.0.0.1:9", timeout_seconds=0.5)
    Source.objects.filter(pk=hosted.pk).update(hosted=True)
    due = timezone.now()
    for source in (customer, hosted):
        MonitorFactory(owner=source.owner, source=source, next_due_at=due)
    from billing.gating import comp

    for source in (customer, hosted):
        comp(source.owner)
    for batch in dispatch.claim_batches(now=due, size=100):
        tasks.evaluate_monitors(due=tasks.by_due(batch))

    receiver.script = [200, 500, 410]
    channel = ChannelFactory(config={"url": receiver.url})
    for n in range(3):
        notification = Notification.objects.create(
            channel=channel,
            event=Notification.Event.FIRED,
            idempotency_key=f"self-monitoring:{uuid.uuid4().hex}:{n}",
            payload={"version": 1, "event": "fired"},
        )
        delivery.deliver(notification.pk)
    tasks.prune_old_rows()


@pytest.mark.django_db(transaction=True)
def test_every_metric_the_rules_and_dashboard_name_is_exported(client: Client, exercised) -> None:
    series = scraped(client)
    missing, wrong = [], []
    for expr in rule_expressions() + dashboard_expressions():
        names = set()
        for name, matchers in selectors(expr):
            names.add(name)
            if name in PROMETHEUS_OWN:
                continue
            if name not in series:
                missing.append(name)
                continue
            for label, op, value in matchers:
                values = {labels[label] for labels in series[name] if label in labels}
                if not values:
                    wrong.append(f"{name} has no label {label}")
                elif op == "=" and value not in values:
                    wrong.append(f"{name}{{{label}={value!r}}} not in {sorted(values)}")
                elif op == "=~" and not any(re.fullmatch(value, v) for v in values):
                    wrong.append(f"{name}{{{label}=~{value!r}}} matches none of {sorted(values)}")
        labels_here = {k for n in names if n in series for labels in series[n] for k in labels}
        for group in BY.findall(expr):
            for label in (part.strip() for part in group.split(",") if part.strip()):
                if label not in labels_here:
                    wrong.append(f"{expr!r} groups by {label}, which its metrics lack")

    assert not missing, f"not exported: {sorted(set(missing))}"
    assert not wrong, wrong


@pytest.mark.django_db(transaction=True)
def test_the_scrape_has_the_series_the_exercise_made(client: Client, exercised) -> None:
    """The exercise above really made the labelled series (so the check is not vacuous)."""
    series = scraped(client)

    kinds = {(s["source_kind"], s["flavor"]) for s in series["growalert_evaluation_errors_total"]}
    outcomes = {(s["kind"], s["outcome"]) for s in series["growalert_deliveries_total"]}
    assert {("customer", "influxql"), ("hosted", "influxql")} <= kinds
    assert {("webhook", "sent"), ("webhook", "retry"), ("webhook", "failed")} <= outcomes
    assert {s["rule"] for s in series["growalert_retention_deleted_rows_total"]} >= {
        "notifications",
        "incidents",
    }
    assert {s["reason"] for s in series["growalert_ingest_points_refused_total"]} >= {"unreadable"}
    assert {s["group"] for s in series["growalert_ingest_oldest_unacknowledged_seconds"]} >= {
        "flushers"
    }


def test_the_dashboard_is_grafana_json_on_one_prometheus_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]

    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "growalert-self"
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
            assert panel["targets"]


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian package prometheus; scripts/bootstrap.sh --browser "
    "installs it)",
)


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_expressions())} rules found" in result.stdout


@needs_promtool
def test_the_rules_fire_on_promtools_unit_tests() -> None:
    """Scheduler lag, a dead heartbeat (NaN), failing webhooks and hosted errors fire; a short
    blip does not (deploy/prometheus/growalert-rules.test.yml)."""
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=RULE_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
