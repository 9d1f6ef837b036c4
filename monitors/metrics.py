"""What the evaluation tasks count, exported at /metrics (growalert.metrics sums every
process's files; see shared.metrics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import Counter, Histogram

from shared.metrics import record

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


def record_batch(*, outcomes: Mapping[str, int], latencies: Sequence[float]) -> None:
    """Records one evaluated batch: counts by outcome, per-evaluation latency, batch size."""

    def write() -> None:
        for outcome, count in outcomes.items():
            EVALUATIONS.labels(outcome=outcome).inc(count)
        for latency in latencies:
            EVALUATION_LATENCY.observe(latency)
        BATCH_SIZE.observe(sum(outcomes.values()))

    record(write)


def record_schedule_repairs(count: int) -> None:
    """Counts monitors the housekeeping task had to put back on the dispatcher's schedule."""
    record(lambda: SCHEDULE_REPAIRS.inc(count))


def record_unwatched_series(count: int) -> None:
    """Counts series a fleet monitor selected past its limit in one evaluation."""
    record(lambda: FLEET_SERIES_UNWATCHED.inc(count))
