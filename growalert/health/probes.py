"""One probe per dependency: each reports ok/unreachable, its latency and its version.

Probes never raise: a dependency that is down is a result, not an error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from monitors.influxdb import client as influx

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    name: str
    ok: bool
    latency_ms: float
    version: str | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        return "ok" if self.ok else "unreachable"


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def probe_postgres() -> ProbeResult:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version')")
            row = cursor.fetchone()
        return ProbeResult("postgres", True, _elapsed_ms(started), version=str(row[0]))
    except DatabaseError as exc:
        # A broken connection must not be reused by the next probe once Postgres is back.
        connection.close()
        logger.warning("postgres probe failed: %s", exc)
        return ProbeResult("postgres", False, _elapsed_ms(started), error=type(exc).__name__)


def probe_redis() -> ProbeResult:
    started = time.perf_counter()
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        info = client.info("server")
        return ProbeResult("redis", True, _elapsed_ms(started), version=str(info["redis_version"]))
    except redis.RedisError as exc:
        logger.warning("redis probe failed: %s", exc)
        return ProbeResult("redis", False, _elapsed_ms(started), error=type(exc).__name__)
    finally:
        client.close()


def probe_influxdb() -> ProbeResult:
    started = time.perf_counter()
    try:
        version = influx.ping(
            settings.INFLUXDB_URL, timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS, trusted=True
        )
        return ProbeResult("influxdb", True, _elapsed_ms(started), version=version)
    except influx.InfluxError as exc:
        logger.warning("influxdb probe failed: %s", exc)
        return ProbeResult("influxdb", False, _elapsed_ms(started), error=type(exc).__name__)


PROBES = (probe_postgres, probe_redis, probe_influxdb)


def run_all() -> list[ProbeResult]:
    return [probe() for probe in PROBES]
