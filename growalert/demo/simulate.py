"""Keeps the demo's GRO-01 devices reporting (run every few seconds by beat): they post their
readings to ``/ingest`` like real devices (growalert/demo/devices.py)."""

from __future__ import annotations

from growalert.demo import devices

STEP_S = 5


def write_live(*, now_ms: int | None = None, lookback_s: int = STEP_S) -> int:
    """Sends readings for the last ``lookback_s`` seconds; resending a point is harmless.
    Returns the number of points accepted."""
    return devices.send_live(now_ms=now_ms, lookback_s=lookback_s)
