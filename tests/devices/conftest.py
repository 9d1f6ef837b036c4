"""Devices tests: each test's accounts get their own hosted databases (user ids restart at 1
in every test), dropped afterwards; the ingest queue and counters start empty."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

from devices import hosted
from devices.ingest import auth, queue


@pytest.fixture(autouse=True)
def _own_hosted_databases(settings: Any) -> Iterator[None]:
    settings.HOSTED_DATABASE_PREFIX = f"t{uuid.uuid4().hex[:10]}_acct_"
    yield
    with hosted.client() as conn:
        for result in conn.query("SHOW DATABASES", database="_internal"):
            for series in result.series:
                for (name,) in series.values:
                    if str(name).startswith(settings.HOSTED_DATABASE_PREFIX):
                        conn.query(f'DROP DATABASE "{name}"', database=name, method="POST")


@pytest.fixture(autouse=True)
def _empty_ingest_state() -> Iterator[None]:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for key in client.scan_iter("growalert:ingest:*", count=1000):
        client.delete(key)
    queue.reset_local_state()
    auth.reset()
    yield
    client.close()
