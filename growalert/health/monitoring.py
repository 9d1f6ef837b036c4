"""Is monitoring blind or late? One assessment, shared by /metrics, /health/deps, /readyz's body
and the operator alert (``growalert.health.operator``).

Web readiness is a different question (can this web process serve pages and the API?) and is
answered by /readyz from Postgres alone; a blind monitoring pipeline must not take the web tier
out of a load balancer, and must not go unnoticed either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count, Q

from growalert.health import heartbeat, probes
from monitors.evaluate.dispatch import scheduler_lag_seconds
from monitors.models import Monitor, Status
from monitors.notify.selectors import outbox_backlog

logger = logging.getLogger(__name__)

# Every reason, in the order they are reported. Each is a gauge label in every scrape.
REASONS = (
    "postgres_unreachable",  # monitors, schedules and states cannot be read or written
    "redis_unreachable",  # the Celery broker: no task runs
    "influxdb_unreachable",  # the deployment's own InfluxDB (hosted and demo sources)
    "scheduler_lag",  # the oldest overdue monitor waits longer than the threshold
    "no_worker_heartbeat",  # no worker recorded the heartbeat recently (beat or workers down)
    "sources_in_error",  # most enabled monitors are in error: their sources are down
)
REASON_TEXT = {
    "postgres_unreachable": "Postgres cannot be reached: nothing is evaluated or recorded",
    "redis_unreachable": "Redis (the Celery broker) cannot be reached: no task runs",
    "influxdb_unreachable": "the deployment's InfluxDB cannot be reached",
    "scheduler_lag": "monitors wait longer than SCHEDULER_LAG_THRESHOLD_SECONDS to be evaluated",
    "no_worker_heartbeat": "no Celery worker recorded the heartbeat lately (beat or workers down)",
    "sources_in_error": "most enabled monitors are in error: their sources are down",
}
# Below this many enabled monitors the share in error says nothing about the deployment.
MIN_MONITORS_FOR_ERROR_RATIO = 5


@dataclass(frozen=True, slots=True)
class Assessment:
    probes: dict[str, probes.ProbeResult]
    scheduler_lag_seconds: float | None  # None: unknown (Postgres cannot be read)
    outbox_backlog: int | None
    heartbeat_age_seconds: float | None  # None: never recorded, or Redis cannot be read
    error_ratio: float | None
    reasons: tuple[str, ...]

    @property
    def blind(self) -> bool:
        return bool(self.reasons)

    def as_json(self) -> dict[str, object]:
        return {
            "blind": self.blind,
            "reasons": list(self.reasons),
            "scheduler_lag_seconds": _rounded(self.scheduler_lag_seconds),
            "outbox_backlog": self.outbox_backlog,
            "worker_heartbeat_age_s": self.heartbeat_age_seconds,
            "monitors_in_error_ratio": _rounded(self.error_ratio),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _monitors_in_error() -> tuple[int, int]:
    """(enabled monitors, of which in error)."""
    counts = Monitor.objects.filter(enabled=True).aggregate(
        total=Count("id"), errors=Count("id", filter=Q(status=Status.ERROR))
    )
    return int(counts["total"]), int(counts["errors"])


def _read_postgres() -> tuple[float | None, int | None, tuple[int, int] | None]:
    try:
        return scheduler_lag_seconds(), outbox_backlog(), _monitors_in_error()
    except DatabaseError as exc:
        connection.close()  # a broken connection must not be reused once Postgres is back
        logger.warning("monitoring state from Postgres unavailable: %s", exc)
        return None, None, None


def assess(results: list[probes.ProbeResult] | None = None) -> Assessment:
    """Probes the dependencies (unless ``results`` are given) and reads the pipeline's state.
    Never raises: what cannot be read is unknown (None) and says why in the reasons."""
    by_name = {r.name: r for r in (probes.run_all() if results is None else results)}
    lag, backlog, in_error = _read_postgres() if by_name["postgres"].ok else (None, None, None)
    total, errors = in_error or (0, 0)
    ratio = errors / total if total else None
    age = heartbeat.age_seconds() if by_name["redis"].ok else None
    found = {
        "postgres_unreachable": lag is None,
        "redis_unreachable": not by_name["redis"].ok,
        "influxdb_unreachable": not by_name["influxdb"].ok,
        "scheduler_lag": lag is not None and lag > settings.SCHEDULER_LAG_THRESHOLD_SECONDS,
        "no_worker_heartbeat": age is None or age > settings.MONITORING_HEARTBEAT_STALE_SECONDS,
        "sources_in_error": total >= MIN_MONITORS_FOR_ERROR_RATIO
        and errors >= settings.MONITORING_ERROR_RATIO * total,
    }
    return Assessment(
        probes=by_name,
        scheduler_lag_seconds=lag,
        outbox_backlog=backlog,
        heartbeat_age_seconds=age,
        error_ratio=ratio,
        reasons=tuple(reason for reason in REASONS if found[reason]),
    )
