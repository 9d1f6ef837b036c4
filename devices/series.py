"""How a device's readings are laid out in its account's database (devices/hosted.py): the
names the ingest path writes and the health monitors and device pages read."""

from __future__ import annotations

SERVER_TAG = "device_id"  # set by growalert on every point: the device that sent it
HEARTBEAT = "_device"  # one point per accepted batch (devices/ingest/heartbeat.py)
SEEN = "seen"  # the heartbeat's always-present field
