"""Hosted data: each account's own database on the deployment's InfluxDB, and its Source.

The database is ``<HOSTED_DATABASE_PREFIX><account id>`` (``acct_42``) with a default retention
policy ``hosted`` of ``HOSTED_RETENTION`` (30 days by default), created on first need: when a
device is registered, and again by the ingest flusher if InfluxDB says it is missing (a wiped
server). The account's hosted Source points monitors at it like any other source; it is
``hosted=True``, so the API and pages never let its connection change, and it carries no
credentials of the deployment (the InfluxDB URL is the deployment's, reached as trusted).
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from monitors import services as monitor_services
from monitors.influxdb import client as influx
from monitors.models import Source

logger = logging.getLogger(__name__)

RETENTION_POLICY = "hosted"
SOURCE_NAME = "GRO-01 devices"
_DURATION = re.compile(r"^[1-9][0-9]{0,5}[hdw]$")
# Databases this process has created or seen: CREATE runs once per account per process.
_ready: set[str] = set()


def database_name(owner_id: int) -> str:
    return f"{settings.HOSTED_DATABASE_PREFIX}{int(owner_id)}"


def retention() -> str:
    value = str(settings.HOSTED_RETENTION)
    if not _DURATION.match(value):
        raise ValueError(f"HOSTED_RETENTION must look like 30d, 12h or 4w, not {value!r}")
    return value


def client(timeout: float | None = None) -> influx.InfluxClient:
    return influx.InfluxClient(
        settings.INFLUXDB_URL,
        timeout=timeout or settings.INFLUXDB_QUERY_TIMEOUT_SECONDS,
        trusted=True,
    )


def ensure_database(name: str, *, force: bool = False) -> None:
    """Creates the database and its retention policy (idempotent). Raises InfluxError."""
    if name in _ready and not force:
        return
    duration, ident = retention(), influx.quote_ident(name)
    rp = influx.quote_ident(RETENTION_POLICY)
    with client() as conn:
        conn.create_database(name)
        results = conn.query(
            f"CREATE RETENTION POLICY {rp} ON {ident} DURATION {duration} REPLICATION 1 DEFAULT",
            database=name,
            method="POST",
        )
        error = next((r.error for r in results if r.error), None)
        if error is not None:
            if "already exists" not in error:
                raise influx.InfluxQueryError(error[:300])
            # Kept in step with the setting when it changes.
            conn.query(
                f"ALTER RETENTION POLICY {rp} ON {ident} DURATION {duration} DEFAULT",
                database=name,
                method="POST",
            )
    _ready.add(name)


def ensure_database_quietly(owner_id: int) -> None:
    """For callers that must not fail on InfluxDB (a payment): the flusher creates it later."""
    try:
        ensure_database(database_name(owner_id))
    except influx.InfluxError:
        logger.warning("hosted database for account %s not created yet", owner_id, exc_info=True)


def hosted_source(*, owner_id: int) -> Source:
    """The account's hosted Source, created the first time (no InfluxDB request)."""
    database = database_name(owner_id)
    existing = Source.objects.filter(owner_id=owner_id, hosted=True, database=database).first()
    if existing is not None:
        return existing
    owner = get_user_model()._default_manager.get(pk=owner_id)
    taken = set(Source.objects.filter(owner_id=owner_id).values_list("name", flat=True))
    name = SOURCE_NAME if SOURCE_NAME not in taken else f"{SOURCE_NAME} (growalert)"
    try:
        return monitor_services.source_create(
            owner=owner,
            name=name,
            url=settings.INFLUXDB_URL,
            database=database,
            hosted=True,
        )
    except ValidationError:
        # Created by a concurrent request between the lookup and the insert.
        found = Source.objects.filter(owner_id=owner_id, hosted=True, database=database).first()
        if found is None:
            raise
        return found
