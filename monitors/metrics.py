"""What the evaluation tasks count, exported at /metrics (growalert.metrics sums every
process's files; see shared.metrics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import Counter, Histogram

from shared.metrics import observe_many, record

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000)

# Not registered with the default registry: /metrics reads every process's files instead.
EVALUATIONS = Counter(
    "growalert_evaluations", "Monitor evaluations by outcome.", ["outcome"], registry=None
)
SCHEDULE_REPAIRS = Counter(
    "growalert_schedule_repairs",
    "Enabled monitors found without a schedule row and put back on it.",
    registry=None,
)
EVALUATION_ERRORS = Counter(
    "growalert_evaluation_errors",
    "Evaluations ending in status error, by kind of source (hosted: growalert's own InfluxDB; "
    "customer) and query flavor. Bounded labels: a source's id would be one series per customer.",
    ["source_kind", "flavor"],
    registry=None,
)
DELIVERIES = Counter(
    "growalert_deliveries",
    "Delivery attempts by channel kind and outcome: sent, retry (failed, will retry), failed "
    "(gave up: a dead letter), skipped (another worker's lease won).",
    ["kind", "outcome"],
    registry=None,
)
RETENTION_DELETED = Counter(
    "growalert_retention_deleted_rows",
    "Rows deleted by retention (manage.py prune, the prune-old-rows task), by rule.",
    ["rule"],
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

FLEET_SERIES_UNWATCHED = Counter(
    "growalert_fleet_series_unwatched",
    "Series a fleet monitor selected beyond FLEET_MAX_SERIES, left unwatched (per evaluation).",
    registry=None,
)


def record_batch(
    *,
    outcomes: Mapping[str, int],
    latencies: Sequence[float],
    source_kind: str = "",
    flavor: str = "",
) -> None:
    """Records one evaluated batch (one source): counts by outcome, errors by kind of source,
    per-evaluation latency, batch size."""

    def write() -> None:
        for outcome, count in outcomes.items():
            EVALUATIONS.labels(outcome=outcome).inc(count)
        if outcomes.get("error") and source_kind:
            EVALUATION_ERRORS.labels(source_kind=source_kind, flavor=flavor).inc(outcomes["error"])
        observe_many(EVALUATION_LATENCY, latencies)
        BATCH_SIZE.observe(sum(outcomes.values()))

    record(write)


def record_schedule_repairs(count: int) -> None:
    """Counts monitors the housekeeping task had to put back on the dispatcher's schedule."""
    record(lambda: SCHEDULE_REPAIRS.inc(count))


def record_pruned(deleted: Mapping[str, int]) -> None:
    """Counts the rows one retention run deleted, by rule."""

    def write() -> None:
        for rule, rows in deleted.items():
            RETENTION_DELETED.labels(rule=rule).inc(rows)

    record(write)


def record_delivery(*, kind: str, outcome: str) -> None:
    """Counts one delivery attempt's outcome."""
    record(lambda: DELIVERIES.labels(kind=kind, outcome=outcome).inc())


def record_unwatched_series(count: int) -> None:
    """Counts series a fleet monitor selected past its limit in one evaluation."""
    record(lambda: FLEET_SERIES_UNWATCHED.inc(count))
