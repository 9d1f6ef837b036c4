"""InfluxDB's CPU for one polling tick of N single-series monitors that differ only in their
device tag (issue 18): how the batch's statements pick the series.

N series ``sensor_value,device=dI value=20`` with 1 s data in the customers' test influxd
(tests/customer_influx.py, started here); each monitor ``last`` over 2 s. A tick is the
dispatcher's batches (BENCH_BATCH monitors each); per tick, three ways to ask:

- ``ORs of 10``: statements of GROUP_SIZE OR terms (what the poller sent before);
- ``one regex per batch``: what ``observe._plan`` sends now (``queries.match_any``);
- ``whole measurement``: one GROUP BY over every series, no filter (only possible when one
  statement covers every monitor of the definition; shown as the floor).

Prints influxd's utime+stime per 1,000 series (from /proc, over BENCH_REPS ticks) and the wall
time per tick. The machine is shared: read the CPU figures, and the load average printed.

    .venv/bin/python bench/bench_grouped_query.py [N ...]      (default: 1000 10000)
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from typing import Any

import common  # bench/common.py: this directory is first on sys.path

common.setup_django()

from monitors.influxdb import client as influx
from monitors.influxdb import observe
from monitors.models import Monitor, Source
from tests import customer_influx

DATABASE = "growalert_bench_grouped"
BATCH = int(os.environ.get("BENCH_BATCH", "1000"))
REPS = int(os.environ.get("BENCH_REPS", "5"))
SECONDS = 30  # of data written before the ticks


WHOLE = (
    'SELECT last("value") AS "value" FROM "sensor_value" WHERE time > now() - 60s GROUP BY "device"'
)
Request = tuple[list[str], dict[str, Any]]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def regex_request(batch: list[Monitor]) -> Request:
    """What the poller sends for a batch now (``observe._plan``)."""
    params: dict[str, Any] = {}
    return [s.query.text for s in observe._plan(batch, params)], params


def ors_request(batch: list[Monitor]) -> Request:
    """What it sent before: statements of GROUP_SIZE OR terms, one per series."""
    texts = []
    for start in range(0, len(batch), observe.GROUP_SIZE):
        chunk = batch[start : start + observe.GROUP_SIZE]
        terms = " OR ".join(f"(\"device\" = '{m.tags['device']}')" for m in chunk)
        texts.append(WHOLE.replace("WHERE ", f"WHERE ({terms}) AND "))
    return texts, {}


def write_series(client: influx.InfluxClient, n: int) -> None:
    client.query(f'DROP DATABASE "{DATABASE}"', database=DATABASE, method="POST")
    client.create_database(DATABASE)
    now_ms = int(time.time()) * 1000
    for second in range(SECONDS, 0, -1):
        lines = [
            influx.line(
                "sensor_value",
                {"value": 20.0},
                tags={"device": f"d{d}"},
                timestamp_ms=now_ms - second * 1000,
            )
            for d in range(n)
        ]
        client.write(lines, database=DATABASE)


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 10_000]
    url = customer_influx.url()
    assert customer_influx._process is not None
    pid = customer_influx._process.pid
    source = Source(url=url, database=DATABASE)
    print(f"batches of {BATCH}; {REPS} ticks each; load average {os.getloadavg()}")
    with influx.InfluxClient(url, timeout=120, trusted=True) as client:
        for n in sizes:
            write_series(client, n)
            monitors = [
                Monitor(
                    source=source,
                    measurement="sensor_value",
                    field="value",
                    tags={"device": f"d{d}"},
                    aggregation="last",
                    window=timedelta(seconds=60),  # the data written above, whatever the load
                    critical=30.0,
                )
                for d in range(n)
            ]
            batches = [monitors[start : start + BATCH] for start in range(0, n, BATCH)]
            ways: dict[str, list[Request]] = {
                "ORs of 10 (before)": [ors_request(b) for b in batches],
                "one regex per batch (now)": [regex_request(b) for b in batches],
                "whole measurement (floor)": [([WHOLE], {})],
            }
            print(f"N={n:,} series")
            for label, requests in ways.items():
                for texts, params in requests:  # warm
                    client.query(";\n".join(texts), database=DATABASE, params=params, method="POST")
                before, started = cpu_seconds(pid), time.perf_counter()
                for _ in range(REPS):
                    for texts, params in requests:
                        client.query(
                            ";\n".join(texts), database=DATABASE, params=params, method="POST"
                        )
                cpu = (cpu_seconds(pid) - before) / REPS
                wall = (time.perf_counter() - started) / REPS
                print(
                    f"  {label:28} influxd {cpu / n * 1e6:6.1f} ms per 1,000 series; "
                    f"wall {wall * 1000:6.0f} ms per tick"
                )
        client.query(f'DROP DATABASE "{DATABASE}"', database=DATABASE, method="POST")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    try:
        main()
    finally:
        customer_influx.stop()
