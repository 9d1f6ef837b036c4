"""The heartbeat line is written out directly (once per request): the same text as the point
``points.to_line`` would write."""

from __future__ import annotations

import pytest

from devices.ingest import heartbeat
from devices.ingest.points import Point, to_line


@pytest.mark.parametrize(
    "status",
    [
        {"seen_ms": 1},
        {"seen_ms": 1, "battery": 64.0},
        {"seen_ms": 1, "battery": 7.5, "rssi": -80.0, "firmware": "3.1.0"},
        {"seen_ms": 1, "rssi": -97.0, "battery": "not a number"},
    ],
)
def test_the_heartbeat_is_the_point_to_line_writes(status: dict[str, object]) -> None:
    fields: dict[str, float | str] = {"seen": 1.0}
    fields.update(
        {k: v for k, v in status.items() if k in ("battery", "rssi") and isinstance(v, float)}
    )
    expected = to_line(Point(heartbeat.MEASUREMENT, {}, fields, 1_700_000_000_000_000_123), 42)
    line = heartbeat.line(device_id=42, status=status, time_ns=1_700_000_000_000_000_123)
    assert line == expected
    assert line.startswith("_device,device_id=42 seen=1.0")
