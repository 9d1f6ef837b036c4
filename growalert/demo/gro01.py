"""A simulated GRO-01 device: temperature, humidity and soil moisture with a daily cycle.

``greenhouse-2`` has a heat spike for 60 s of every 600 s (its vent "sticks"), so a demo
monitor on it fires and resolves within ten minutes of ``make run``, and then every ten minutes:
about a dozen demo emails an hour (it was every 3 minutes: some 60 an hour).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from monitors.influxdb import client as influx

MEASUREMENT = "gro01"
DEVICES = ("greenhouse-1", "greenhouse-2", "nursery")
SPIKING_DEVICE = "greenhouse-2"
SPIKE_PERIOD_S = 600
SPIKE_LENGTH_S = 60
SPIKE_HEIGHT = 14.0


def spiking(timestamp_ms: int) -> bool:
    return (timestamp_ms // 1000) % SPIKE_PERIOD_S < SPIKE_LENGTH_S


def reading(device: str, timestamp_ms: int, rng: random.Random) -> dict[str, float]:
    day_phase = (timestamp_ms / 1000 % 86400) / 86400 * 2 * math.pi
    offset = DEVICES.index(device) * 1.5 if device in DEVICES else 0.0
    temperature = 22 + offset + 3 * math.sin(day_phase) + rng.gauss(0, 0.3)
    if device == SPIKING_DEVICE and spiking(timestamp_ms):
        temperature += SPIKE_HEIGHT
    return {
        "temperature": round(temperature, 2),
        "humidity": round(60 - 12 * math.sin(day_phase) + rng.gauss(0, 1.5), 2),
        "soil_moisture": round(38 - offset + 4 * math.cos(day_phase) + rng.gauss(0, 0.8), 2),
    }


def lines_between(
    *, start_ms: int, end_ms: int, step_s: int, seed: int | None = None
) -> Iterator[str]:
    """Line protocol for every device at each step in [start, end]."""
    rng = random.Random(seed)
    first = start_ms - start_ms % (step_s * 1000)
    for ts in range(first, end_ms + 1, step_s * 1000):
        if ts < start_ms:
            continue
        for device in DEVICES:
            yield influx.line(
                MEASUREMENT, reading(device, ts, rng), tags={"device": device}, timestamp_ms=ts
            )


def history_lines(*, end_ms: int, hours: float, step_s: int = 60, seed: int = 1) -> Iterator[str]:
    return lines_between(
        start_ms=end_ms - int(hours * 3600 * 1000), end_ms=end_ms, step_s=step_s, seed=seed
    )
