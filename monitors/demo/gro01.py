"""A simulated GRO-01 device: temperature, humidity and soil moisture with a daily cycle."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from monitors import influx

MEASUREMENT = "gro01"
DEVICES = ("greenhouse-1", "greenhouse-2", "nursery")


def reading(device: str, timestamp_ms: int, rng: random.Random) -> dict[str, float]:
    day_phase = (timestamp_ms / 1000 % 86400) / 86400 * 2 * math.pi
    offset = DEVICES.index(device) * 1.5 if device in DEVICES else 0.0
    return {
        "temperature": round(22 + offset + 6 * math.sin(day_phase) + rng.gauss(0, 0.4), 2),
        "humidity": round(60 - 12 * math.sin(day_phase) + rng.gauss(0, 1.5), 2),
        "soil_moisture": round(38 - offset + 4 * math.cos(day_phase) + rng.gauss(0, 0.8), 2),
    }


def history_lines(*, end_ms: int, hours: float, step_s: int = 60, seed: int = 1) -> Iterator[str]:
    rng = random.Random(seed)
    start_ms = end_ms - int(hours * 3600 * 1000)
    for ts in range(start_ms, end_ms + 1, step_s * 1000):
        for device in DEVICES:
            yield influx.line(
                MEASUREMENT, reading(device, ts, rng), tags={"device": device}, timestamp_ms=ts
            )
