"""Prometheus metrics at /metrics.

Counters and histograms are written by the processes that count them (the evaluation counters
in monitors.metrics) in prometheus_client's multiprocess mode (shared.metrics); the scrape sums
every process's files. They used to live in Redis without persistence and fell to zero with it.

Gauges are read at scrape time (scheduler lag, outbox backlog, dependency and monitoring
state, see ``growalert.health.monitoring``) and every one of them is in every scrape: a gauge
whose source is down is exported as NaN, with its ``..._known`` gauge at 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from devices.ingest import backlog, queue
from growalert.health import monitoring


def _gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=math.nan if value is None else value)


class GrowalertCollector(Collector):
    """The gauges, read at scrape time; each is present in every scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
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
        yield from _ingest_gauges()


def _ingest_gauges() -> Iterator[GaugeMetricFamily]:
    """How late device readings are in the ingest stream, per reader (devices/ingest/backlog.py)."""
    try:
        known: backlog.Backlog | None = backlog.read(queue.client())
    except redis.RedisError:
        known = None
    yield _gauge(
        "growalert_ingest_stream_entries",
        "Accepted ingest batches in the Redis stream, waiting for at least one reader "
        "(NaN when Redis cannot be read).",
        None if known is None else known.entries,
    )
    yield _gauge(
        "growalert_ingest_backlog_known",
        "1 when the ingest stream could be read, 0 when its backlog is unknown.",
        float(known is not None),
    )
    oldest = GaugeMetricFamily(
        "growalert_ingest_oldest_unacknowledged_seconds",
        "Age of the oldest accepted ingest batch a reader (consumer group: flushers write to "
        "InfluxDB) has not acknowledged yet; 0 when it is caught up.",
        labels=["group"],
    )
    if known is None:  # unknown, not caught up: the flushers' series stays in the scrape
        oldest.add_metric([queue.GROUP], math.nan)
    for lag in known.groups if known else ():
        oldest.add_metric([lag.group], lag.oldest_age_seconds)
    yield oldest


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)  # type: ignore[no-untyped-call]
    registry.register(GrowalertCollector())
    return registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
