"""What the ingest path counts, exported at /metrics (shared.metrics: every process writes its
own file, the scrape sums them)."""

from __future__ import annotations

from prometheus_client import Counter

from shared.metrics import record

# Not registered with the default registry: /metrics reads every process's files instead.
POINTS_REFUSED = Counter(
    "growalert_ingest_points_refused",
    "Points acknowledged by POST /ingest (202) that InfluxDB then refused to store, by reason "
    "(field_type_conflict, beyond_retention, limit, unreadable, other). Should stay at 0: "
    "every one is also logged at ERROR by the ingest flusher.",
    ["reason"],
    registry=None,
)


def record_refused(reason: str, points: int) -> None:
    record(lambda: POINTS_REFUSED.labels(reason=reason).inc(points))
