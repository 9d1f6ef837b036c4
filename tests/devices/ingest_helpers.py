"""Sending readings to /ingest and reading back what reached InfluxDB."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings
from django.test import Client

from devices import hosted
from devices.ingest import queue, signature
from devices.keys import hash_key
from monitors.influxdb import client as influx
from monitors.models import Channel, Monitor, Source


def post(
    client: Client,
    body: bytes | str | Any,
    *,
    key: str | None,
    content_type: str = "application/json",
    path: str = "/ingest",
    **headers: str,
) -> Any:
    if not isinstance(body, bytes | str):
        body = json.dumps(body)
    if key is not None:
        headers["X-API-Key"] = key
    return client.post(path, data=body, content_type=content_type, headers=headers)


def signed_headers(body: bytes, key: str, *, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {
        "X-Timestamp": timestamp,
        "X-Signature": signature.sign(body, timestamp=timestamp, key_hash=hash_key(key)),
    }


def pending_batches() -> int:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return int(client.xlen(queue.STREAM))
    finally:
        client.close()


def flush() -> int:
    flusher = queue.Flusher(consumer="test")
    try:
        total = 0
        while written := flusher.flush_once():
            total += written
        flusher.flush_statuses(force=True)
        return total
    finally:
        flusher.close()


def rows(owner_id: int, measurement: str = "gro01") -> list[dict[str, Any]]:
    """Every point of ``measurement`` in the account's hosted database (none if it is missing)."""
    database = hosted.database_name(owner_id)
    with hosted.client() as conn:
        query = f"SELECT * FROM {influx.quote_ident(measurement)}"  # noqa: S608
        (result,) = conn.query(query, database=database)
    if result.error and "database not found" in result.error:
        return []
    assert result.error is None, result.error
    out = []
    for series in result.series:
        for values in series.values:
            out.append(dict(zip(series.columns, values, strict=True)))
    return out


def arrival_monitor(source: Source, label: str, **fields: Any) -> Monitor:
    """A monitor the arrival path decides: ``last`` over 2 s above 30, interval 10 s (unless
    ``fields`` say otherwise), with a webhook channel to nowhere; ``fields`` name at least its
    measurement, field and tags."""
    channel = Channel.objects.create(
        owner=source.owner,
        name=f"hook {label}",
        kind="webhook",
        config={"url": "http://127.0.0.1:9/"},
    )
    values: dict[str, Any] = {
        "owner": source.owner,
        "source": source,
        "name": f"hot {label}",
        "aggregation": "last",
        "window": timedelta(seconds=2),
        "comparator": "above",
        "critical": 30.0,
        "interval": timedelta(seconds=10),
        **fields,
    }
    monitor = Monitor.objects.create(**values)
    monitor.channels.add(channel)
    return monitor
