"""Reads of a device's readings in its account's hosted database (the device page)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from devices import hosted
from devices.ingest.points import NAME
from devices.models import Device
from devices.series import HEARTBEAT, SERVER_TAG
from monitors.influxdb import client as influx

logger = logging.getLogger(__name__)

Point = tuple[int, float]  # (epoch milliseconds, value)
MAX_HOURS = 24 * 7


@dataclass(frozen=True)
class Latest:
    measurement: str
    time_ms: int
    values: dict[str, float | bool | str]


def latest(device: Device) -> list[Latest]:
    """The device's newest reading per measurement over the last day; [] when unavailable."""
    if device.owner_id is None:
        return []
    database = hosted.database_name(int(device.owner_id))
    query = (  # "device_id" is points.SERVER_TAG
        'SELECT *::field FROM /.*/ WHERE "device_id" = $device '
        "AND time > now() - 1d GROUP BY * ORDER BY time DESC LIMIT 1"
    )
    try:
        with hosted.client() as conn:
            results = conn.query(query, database=database, params={"device": str(device.pk)})
    except influx.InfluxError as exc:
        logger.info("no latest readings for device %s: %s", device.pk, exc)
        return []
    found: dict[str, Latest] = {}
    for result in results:
        for series in result.series:
            if series.name == HEARTBEAT:  # growalert's own point, not a reading
                continue
            for row in series.values:
                values = {
                    column: value
                    for column, value in zip(series.columns, row, strict=True)
                    if column != "time" and value is not None
                }
                current = found.get(series.name)
                if current is None or current.time_ms < int(row[0]):
                    found[series.name] = Latest(series.name, int(row[0]), values)
    return sorted(found.values(), key=lambda item: item.measurement)


def history(device: Device, *, measurement: str, field: str, hours: float) -> list[Point]:
    """A numeric field of the device over the last ``hours``, averaged per ~200 buckets."""
    if device.owner_id is None or not NAME.match(measurement) or not NAME.match(field):
        return []
    hours = min(max(hours, 0.1), MAX_HOURS)
    bucket_s = max(int(hours * 3600 / 200), 5)
    query = (
        f"SELECT mean({influx.quote_ident(field)}) FROM {influx.quote_ident(measurement)} "  # noqa: S608
        f"WHERE {influx.quote_ident(SERVER_TAG)} = $device AND time > now() - {int(hours * 60)}m "
        f"GROUP BY time({bucket_s}s) fill(none)"
    )
    try:
        with hosted.client() as conn:
            (result,) = conn.query(
                query,
                database=hosted.database_name(int(device.owner_id)),
                params={"device": str(device.pk)},
            )
    except (influx.InfluxError, ValueError) as exc:
        logger.info("no history for device %s: %s", device.pk, exc)
        return []
    if result.error or not result.series:
        return []
    return [
        (int(t), float(v))
        for t, v in result.series[0].values
        if isinstance(v, int | float) and math.isfinite(v)
    ]
