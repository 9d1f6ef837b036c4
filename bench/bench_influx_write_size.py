"""InfluxDB's CPU per point by the size of a /write request: how large the ingest flusher's
writes must be for InfluxDB's cost per point to stop dropping.

Writes the same points (lines as the flusher writes them: the ``device_id`` tag, temperature,
humidity, VPD and dew point, nanosecond timestamps) to a scratch database in requests of
1,000 to 20,000 points, one request at a time, and prints influxd's CPU (/proc) per 100 points
for each size. The flusher writes what it read in one round (up to ``INGEST_FLUSH_BATCH``
batches, in ``INGEST_FLUSH_WRITERS`` requests): compare its requests' size with these.

    .venv/bin/python bench/bench_influx_write_size.py [points per size]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import common  # bench/common.py: this directory is first on sys.path

common.setup_django()

from devices import hosted

DATABASE = "bench_influx_write_size"
SIZES = (100, 1_000, 5_000, 20_000)
TICK = os.sysconf("SC_CLK_TCK")


def influxd_cpu() -> float:
    pid = int((common.ROOT / ".local" / "run" / "influxdb.pid").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def lines(count: int, start_ns: int) -> list[str]:
    return [
        f"gro01,sensor=s{i % 100:03d},device_id=7 temperature={20 + (i % 100) / 10:.1f},"
        f"humidity={50 + (i % 100) / 7:.2f},vpd=1.2345,dew_point=12.345 {start_ns + i}"
        for i in range(count)
    ]


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with hosted.client(timeout=60) as conn:
        conn.create_database(DATABASE)
        conn.write(lines(1_000, time.time_ns()), database=DATABASE, precision="ns")  # series
        print(f"influxd CPU per 100 points by request size ({total:,} points per size)")
        for size in (*SIZES, SIZES[0]):  # the smallest again last: the order is not the cause
            points = lines(total, time.time_ns())
            bodies = ["\n".join(points[i : i + size]) for i in range(0, total, size)]
            before, started = influxd_cpu(), time.monotonic()
            for body in bodies:
                conn.write([body], database=DATABASE, precision="ns")
            elapsed = time.monotonic() - started
            cpu = (influxd_cpu() - before) / total * 100 * 1000
            print(
                f"  {size:>6,} points per request: {cpu:.3f} ms CPU, "
                f"{elapsed / total * 100 * 1000:.3f} ms wall per 100 points"
            )
        conn.query(f"DROP DATABASE {DATABASE}", database=DATABASE, method="POST")


if __name__ == "__main__":
    main()
