"""Backtest wall time: 24 h of a GRO-01 series (one point every 10 s: 8,640 points) replayed at
1 min resolution (1,440 evaluations through the alerts_core state machine), as
POST /monitors/preview does — InfluxDB query, sliding aggregation, transitions, summary.

    .venv/bin/python bench/bench_backtest.py [runs]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "growalert.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")
# The bench's source is a customer's InfluxDB: the second influxd of tests/customer_influx.py
# on loopback (the deployment's own InfluxDB is never a customer source).
os.environ.setdefault("SOURCES_ALLOW_PRIVATE_ADDRESSES", "true")

import django

django.setup()

from django.contrib.auth import get_user_model

from growalert.demo import gro01
from monitors.evaluate import backtest
from monitors.influxdb import client as influx
from monitors.models import Monitor, Source
from tests import customer_influx

DATABASE = "growalert_bench_backtest"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    now_ms = int(time.time() * 1000)
    lines = [
        line
        for line in gro01.lines_between(
            start_ms=now_ms - 25 * 3600 * 1000, end_ms=now_ms, step_s=10
        )
        if "greenhouse-2" in line
    ]
    with influx.InfluxClient(customer_influx.url(), timeout=60, trusted=True) as client:
        client.create_database(DATABASE)
        for start in range(0, len(lines), 5000):
            client.write(lines[start : start + 5000], database=DATABASE)
    owner, _ = get_user_model().objects.get_or_create(username="bench-backtest")
    source = Source(owner=owner, name="bench", url=customer_influx.url(), database=DATABASE)
    monitor = Monitor(  # unsaved, like a preview
        owner=owner,
        source=source,
        name="greenhouse-2 too hot",
        measurement="gro01",
        field="temperature",
        tags={"device": "greenhouse-2"},
        aggregation="mean",
        window=timedelta(minutes=5),
        comparator="above",
        critical=30,
        warning=27,
        interval=timedelta(minutes=1),
        pending_for=2,
        recover_after=2,
    )
    timings = []
    result = None
    for _ in range(runs):
        began = time.perf_counter()
        result = backtest.backtest(monitor, hours=24)
        timings.append(time.perf_counter() - began)
    assert result is not None
    if result.error:
        raise SystemExit(result.error)
    summary = result.summary()
    print(
        f"24 h backtest at 1 min: {len(result.series):,} points, "
        f"{summary['evaluations']:,} evaluations, {summary['text']}"
    )
    print(
        f"wall time over {runs} runs: median {statistics.median(timings) * 1000:.0f} ms, "
        f"min {min(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    try:
        main()
    finally:
        customer_influx.stop()
