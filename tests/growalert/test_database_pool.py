"""DATABASE_POOL=true: Django's psycopg pool serves many threads with a few connections, the
prepared GET /monitors statement survives a connection going back to the pool, and
DATABASE_TRANSACTION_POOLING (PgBouncer in transaction mode) sends it unprepared. Each case runs
in a process of its own, with the settings read from its environment as in production."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.notify.test_end_to_end import _database_url

pytestmark = pytest.mark.django_db(transaction=True)
needs_pool = pytest.mark.skipif(
    importlib.util.find_spec("psycopg_pool") is None,
    reason="psycopg-pool is not installed (pyproject: psycopg[binary,pool]; the shared "
    "virtualenv is reinstalled by scripts/bootstrap.sh when pyproject.toml changes)",
)

THREADS = """
import json, threading
from concurrent.futures import ThreadPoolExecutor
import django
django.setup()
from django.db import connection, connections
from monitors.models import Monitor

def one(_):
    try:
        return Monitor.objects.count()
    finally:
        connection.close()  # with a pool: back to the pool

with ThreadPoolExecutor(16) as pool:
    counts = list(pool.map(one, range(64)))
stats = connections["default"].pool.get_stats()
print(json.dumps({"counts": sorted(set(counts)), "stats": stats}))
"""

PREPARED = """
import json
import django
django.setup()
from django.db import connection
from monitors.raw_rows import execute_prepared

results = []
for _ in range(3):
    with connection.cursor() as cursor:
        execute_prepared(cursor, "SELECT %(a)s::int + %(b)s::int", {"a": 2, "b": 3})
        results.append(cursor.fetchone()[0])
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        prepared = cursor.fetchone()[0]
    connection.close()  # back to the pool (or closed): the next round may get it again
print(json.dumps({"results": results, "prepared": prepared}))
"""


def run(code: str, **env: str) -> dict:  # type: ignore[type-arg]
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "growalert.settings",
            "DATABASE_URL": _database_url(),
            **env,
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@needs_pool
def test_sixteen_threads_share_a_pool_of_at_most_four_connections() -> None:
    found = run(
        THREADS, DATABASE_POOL="true", DATABASE_POOL_MIN_SIZE="1", DATABASE_POOL_MAX_SIZE="4"
    )

    assert found["counts"] == [0]
    assert found["stats"]["pool_max"] == 4
    assert found["stats"]["connections_num"] <= 4  # connections ever opened
    assert found["stats"]["requests_num"] >= 64  # every query got one from the pool


@needs_pool
def test_a_prepared_statement_survives_its_connection_going_back_to_the_pool() -> None:
    found = run(
        PREPARED, DATABASE_POOL="true", DATABASE_POOL_MIN_SIZE="1", DATABASE_POOL_MAX_SIZE="1"
    )

    assert found["results"] == [5, 5, 5]
    assert found["prepared"] == 1  # prepared once on the one pooled connection, then reused


@needs_pool
def test_behind_a_transaction_pooler_nothing_is_prepared() -> None:
    found = run(PREPARED, DATABASE_POOL="true", DATABASE_TRANSACTION_POOLING="true")

    assert found["results"] == [5, 5, 5]
    assert found["prepared"] == 0


def test_the_default_keeps_persistent_connections_without_a_pool() -> None:
    from django.conf import settings

    assert settings.DATABASE_POOL is False
    assert "pool" not in settings.DATABASES["default"]["OPTIONS"]
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 60
