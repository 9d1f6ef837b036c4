"""Writes live GRO-01 readings into the demo database (run every few seconds by beat)."""

from __future__ import annotations

import time

from django.conf import settings

from monitors.demo import gro01
from monitors.influxdb import client as influx

STEP_S = 5


def write_live(*, now_ms: int | None = None, lookback_s: int = STEP_S) -> int:
    """Writes readings for the last ``lookback_s`` seconds; rewriting a point is harmless."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    lines = list(
        gro01.lines_between(start_ms=now_ms - lookback_s * 1000, end_ms=now_ms, step_s=STEP_S)
    )
    with influx.InfluxClient(settings.INFLUXDB_URL, timeout=5, trusted=True) as client:
        client.write(lines, database=settings.INFLUXDB_DEMO_DATABASE)
    return len(lines)
