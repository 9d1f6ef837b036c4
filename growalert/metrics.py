"""Prometheus metrics at /metrics.

Evaluations happen in Celery workers, possibly on other machines, while /metrics is served by
the web process: counters and histograms therefore live in Redis (a few HINCRBYs per batch, in
one pipeline) and a collector reads them, plus scheduler lag and the outbox backlog from
Postgres, at scrape time.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

PREFIX = "growalert:metrics:"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000)
_client: redis.Redis | None = None  # decode_responses: hash keys and values come back as str


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1, decode_responses=True
        )
    return _client


def _bucket_counts(values: Iterable[float], bounds: Sequence[float]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for value in values:
        index = bisect.bisect_left(bounds, value)
        counts[str(bounds[index]) if index < len(bounds) else "+Inf"] += 1
    return counts


def record_batch(*, outcomes: Mapping[str, int], latencies: Sequence[float]) -> None:
    """Records one evaluated batch: counts by outcome, per-evaluation latency, batch size.

    Metrics must never break evaluation: a Redis error is logged and dropped."""
    pipe = _redis().pipeline(transaction=False)
    for outcome, count in outcomes.items():
        pipe.hincrby(PREFIX + "evaluations", outcome, count)
    for bucket, count in _bucket_counts(latencies, LATENCY_BUCKETS).items():
        pipe.hincrby(PREFIX + "latency_buckets", bucket, count)
    pipe.hincrbyfloat(PREFIX + "latency_sum", "sum", sum(latencies))
    size = sum(outcomes.values())
    pipe.hincrby(PREFIX + "batch_buckets", next(iter(_bucket_counts([size], BATCH_BUCKETS))), 1)
    pipe.hincrbyfloat(PREFIX + "batch_sum", "sum", size)
    try:
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("could not record metrics: %s", exc)


def record_schedule_repairs(count: int) -> None:
    """Counts monitors the housekeeping task had to put back on the dispatcher's schedule."""
    try:
        _redis().hincrby(PREFIX + "schedule_repairs", "total", count)
    except redis.RedisError as exc:
        logger.warning("could not record metrics: %s", exc)


def _histogram(
    name: str, doc: str, buckets_key: str, sum_key: str, bounds: Sequence[float]
) -> HistogramMetricFamily:
    raw = {str(k): int(v) for k, v in _redis().hgetall(PREFIX + buckets_key).items()}
    cumulative, running = [], 0
    for bound in [*map(str, bounds), "+Inf"]:
        running += raw.get(bound, 0)
        cumulative.append((bound, running))
    total = float(_redis().hget(PREFIX + sum_key, "sum") or 0)
    return HistogramMetricFamily(name, doc, buckets=cumulative, sum_value=total)


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


class GrowalertCollector(Collector):
    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        try:
            yield from self._from_redis()
        except redis.RedisError as exc:
            logger.warning("metrics from Redis unavailable: %s", exc)
        try:
            yield GaugeMetricFamily(
                "growalert_scheduler_lag_seconds",
                "Age of the oldest overdue monitor.",
                value=scheduler_lag_seconds(),
            )
            yield GaugeMetricFamily(
                "growalert_outbox_backlog",
                "Notifications waiting to be delivered.",
                value=outbox_backlog(),
            )
        except DatabaseError as exc:
            connection.close()
            logger.warning("metrics from Postgres unavailable: %s", exc)

    def _from_redis(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        evaluations = CounterMetricFamily(
            "growalert_evaluations", "Monitor evaluations by outcome.", labels=["outcome"]
        )
        for outcome, count in sorted(_redis().hgetall(PREFIX + "evaluations").items()):
            evaluations.add_metric([str(outcome)], int(count))
        yield evaluations
        yield CounterMetricFamily(
            "growalert_schedule_repairs",
            "Enabled monitors found without a schedule row and put back on it.",
            value=int(_redis().hget(PREFIX + "schedule_repairs", "total") or 0),
        )
        yield _histogram(
            "growalert_evaluation_latency_seconds",
            "From a monitor's due time to its new state committed.",
            "latency_buckets",
            "latency_sum",
            LATENCY_BUCKETS,
        )
        yield _histogram(
            "growalert_evaluation_batch_size",
            "Monitors per evaluation batch.",
            "batch_buckets",
            "batch_sum",
            BATCH_BUCKETS,
        )


_registry = CollectorRegistry(auto_describe=False)
_registry.register(GrowalertCollector())


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
