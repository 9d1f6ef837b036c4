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

from devices.ingest.points import STATUS_FIELDS
from devices.series import HEARTBEAT, SEEN, SERVER_TAG

MEASUREMENT = HEARTBEAT


def line(*, device_id: int, status: Mapping[str, object], time_ns: int) -> str:
    """The heartbeat for one batch, at the time it was received; ``status`` is what the batch
    said about the device (service.device_status). Written out directly, as ``points.to_line``
    writes a point (floats as ``repr``): this runs once per request."""
    extra = "".join(
        f",{name}={value!r}"
        for name in STATUS_FIELDS
        if isinstance(value := status.get(name), float)
    )
    return f"{MEASUREMENT},{SERVER_TAG}={device_id} {SEEN}=1.0{extra} {time_ns}"
