"""Keeps the demo's GRO-01 devices reporting (run every few seconds by beat): they post their
readings to ``/ingest`` like real devices (devices/demo.py)."""

from __future__ import annotations

STEP_S = 5


def write_live(*, now_ms: int | None = None, lookback_s: int = STEP_S) -> int:
    """Sends readings for the last ``lookback_s`` seconds; resending a point is harmless.
    Returns the number of points accepted."""
    from devices import demo  # the demo wires devices into monitors' beat task

    return demo.send_live(now_ms=now_ms, lookback_s=lookback_s)
