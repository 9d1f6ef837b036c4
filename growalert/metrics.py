"""Prometheus metrics at /metrics.

Evaluations happen in Celery worker processes while /metrics is served by gunicorn workers.
Counters and histograms use prometheus_client's multiprocess mode: every process writes its own
memory-mapped file in ``settings.PROMETHEUS_MULTIPROC_DIR`` and the scrape sums them. The counts
therefore survive a Redis restart (they used to live in Redis without persistence and fell to
zero with it) and a worker that exits (its file stays and keeps counting in the sum). The web
and worker processes must share that directory (same host, or one volume in docker-compose).

Gauges are read at scrape time (scheduler lag, outbox backlog, dependency and monitoring
state, see ``growalert.health.monitoring``) and every one of them is in every scrape: a gauge
whose source is down is exported as NaN, with its ``..._known`` gauge at 0.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence

from django.conf import settings
from django.db import connection
from django.db.models import Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000)

# Settings put PROMETHEUS_MULTIPROC_DIR in the environment; should prometheus_client have been
# imported before them, its value class is still the single-process one: switch it.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", settings.PROMETHEUS_MULTIPROC_DIR)
if values.ValueClass is values.MutexValue:
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]

# Not registered with the default registry: /metrics reads every process's files instead.
EVALUATIONS = Counter(
    "growalert_evaluations", "Monitor evaluations by outcome.", ["outcome"], registry=None
)
SCHEDULE_REPAIRS = Counter(
    "growalert_schedule_repairs",
    "Enabled monitors found without a schedule row and put back on it.",
    registry=None,
)
EVALUATION_LATENCY = Histogram(
    "growalert_evaluation_latency_seconds",
    "From a monitor's due time to its new state committed.",
    buckets=LATENCY_BUCKETS,
    registry=None,
)
BATCH_SIZE = Histogram(
    "growalert_evaluation_batch_size",
    "Monitors per evaluation batch.",
    buckets=BATCH_BUCKETS,
    registry=None,
)


def record_batch(*, outcomes: Mapping[str, int], latencies: Sequence[float]) -> None:
    """Records one evaluated batch: counts by outcome, per-evaluation latency, batch size.

    Metrics must never break evaluation: an error writing the metrics file is logged."""
    try:
        for outcome, count in outcomes.items():
            EVALUATIONS.labels(outcome=outcome).inc(count)
        for latency in latencies:
            EVALUATION_LATENCY.observe(latency)
        BATCH_SIZE.observe(sum(outcomes.values()))
    except (OSError, ValueError) as exc:
        logger.warning("could not record metrics: %s", exc)


def record_schedule_repairs(count: int) -> None:
    """Counts monitors the housekeeping task had to put back on the dispatcher's schedule."""
    try:
        SCHEDULE_REPAIRS.inc(count)
    except (OSError, ValueError) as exc:
        logger.warning("could not record metrics: %s", exc)


def mark_process_dead(pid: int) -> None:
    """Bookkeeping when a gunicorn or Celery child exits (its counter file stays, and counts)."""
    multiprocess.mark_process_dead(pid, settings.PROMETHEUS_MULTIPROC_DIR)  # type: ignore[no-untyped-call]


def scheduler_lag_seconds() -> float:
    """Age of the oldest overdue monitor the dispatcher should have claimed (0 when none is
    overdue). Monitors of owners paused by billing wait on purpose and do not count."""
    from billing.gating import gated_owner_ids
    from monitors.models import Schedule

    oldest = (
        Schedule.objects.filter(next_due_at__lte=timezone.now())
        .exclude(owner_id__in=gated_owner_ids())
        .aggregate(oldest=Min("next_due_at"))["oldest"]
    )
    return 0.0 if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())


def outbox_backlog() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM monitors_notification WHERE status IN ('pending', 'sending')"
        )
        return int(cursor.fetchone()[0])


def _gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=math.nan if value is None else value)


class GrowalertCollector(Collector):
    """The gauges, read at scrape time; each is present in every scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from growalert.health import monitoring

        state = monitoring.assess()
        yield _gauge(
            "growalert_scheduler_lag_seconds",
            "Age of the oldest overdue monitor (NaN when Postgres cannot be read).",
            state.scheduler_lag_seconds,
        )
        yield _gauge(
            "growalert_scheduler_lag_known",
            "1 when growalert_scheduler_lag_seconds could be read, 0 when it is unknown.",
            float(state.scheduler_lag_seconds is not None),
        )
        yield _gauge(
            "growalert_outbox_backlog",
            "Notifications waiting to be delivered (NaN when Postgres cannot be read).",
            state.outbox_backlog,
        )
        yield _gauge(
            "growalert_outbox_backlog_known",
            "1 when growalert_outbox_backlog could be read, 0 when it is unknown.",
            float(state.outbox_backlog is not None),
        )
        yield _gauge(
            "growalert_worker_heartbeat_age_seconds",
            "Seconds since a Celery worker last recorded the heartbeat (NaN when unknown).",
            state.heartbeat_age_seconds,
        )
        yield _gauge(
            "growalert_monitors_in_error_ratio",
            "Share of the enabled monitors whose status is error (NaN when unknown).",
            state.error_ratio,
        )
        up = GaugeMetricFamily(
            "growalert_dependency_up", "1 when the dependency answers.", labels=["dependency"]
        )
        for name, result in sorted(state.probes.items()):
            up.add_metric([name], float(result.ok))
        yield up
        yield _gauge(
            "growalert_monitoring_blind",
            "1 when monitoring is blind or late (see growalert_monitoring_blind_reason).",
            float(state.blind),
        )
        reasons = GaugeMetricFamily(
            "growalert_monitoring_blind_reason",
            "1 for each reason monitoring is blind or late right now.",
            labels=["reason"],
        )
        for reason in monitoring.REASONS:
            reasons.add_metric([reason], float(reason in state.reasons))
        yield reasons


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)  # type: ignore[no-untyped-call]
    registry.register(GrowalertCollector())
    return registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
