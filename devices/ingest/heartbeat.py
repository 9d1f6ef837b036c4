"""The heartbeat: one point growalert writes for every accepted batch, whatever it held.

``_device,device_id=<id> seen=1[,battery=<%>][,rssi=<dBm>] <receive time>``

A device's health monitors read it (devices/health.py): "offline" counts ``seen`` over its
window, so it fires when the device stops sending anything at all, whichever measurements and
fields it sends; "battery low" and "signal weak" read ``battery`` and ``rssi`` here, so they
work whatever measurement the device reports them in. The measurement's leading underscore
keeps it apart from device data: a device's names must start with a letter (points.NAME).
"""

from __future__ import annotations

from collections.abc import Mapping

from devices.ingest.points import STATUS_FIELDS, FieldValue, Point, to_line
from devices.series import HEARTBEAT, SEEN

MEASUREMENT = HEARTBEAT


def line(*, device_id: int, status: Mapping[str, object], time_ns: int) -> str:
    """The heartbeat for one batch, at the time it was received; ``status`` is what the batch
    said about the device (service.device_status)."""
    fields: dict[str, FieldValue] = {SEEN: 1.0}
    for name in STATUS_FIELDS:
        value = status.get(name)
        if isinstance(value, float):
            fields[name] = value
    return to_line(Point(MEASUREMENT, {}, fields, time_ns), device_id)
