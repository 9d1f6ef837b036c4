"""Two celery beat processes and three workers on one Redis and one Postgres never evaluate a
monitor twice for one tick, and miss none.

Both beats send the dispatcher every second (so it runs about twice a second, on any of the
three workers); the claim (``FOR UPDATE SKIP LOCKED``, ``next_due_at`` advanced in the same
statement, monitors/evaluate/dispatch.py) is what keeps a tick from being handed out twice.
Two triggers record, in a table of the test's own, every claim (a schedule row's due time moved
on: the tick claimed is the old one) and every evaluation applied (a monitor's
``evaluated_due_at`` moved on). growalert itself keeps no per-tick history, so this log is the
evidence: every tick claimed once, every claimed tick applied once, consecutive ticks one
interval apart (none skipped).

TWO_BEATS_SECONDS sets how long it runs (default 60; 300 for the 5-minute run of issue 21).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter, defaultdict
from datetime import timedelta
from typing import IO, Any

import pytest
from django.db import connection
from django.utils import timezone

from billing.gating import comp
from monitors.influxdb import client as influx
from monitors.models import Monitor, Schedule
from tests.conftest import ROOT, start_celery_worker, stop_celery_worker
from tests.factories import SourceFactory, UserFactory
from tests.notify.test_end_to_end import _database_url

pytestmark = pytest.mark.django_db(transaction=True)

SECONDS = float(os.environ.get("TWO_BEATS_SECONDS", "60"))
MONITORS = 12
INTERVAL = timedelta(seconds=10)  # the shortest by default (MONITOR_MIN_INTERVAL_SECONDS)

LOG_TABLE = """
CREATE TABLE test_tick_log (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,            -- claimed | applied
    monitor_id bigint NOT NULL,
    due_at timestamptz NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE FUNCTION test_log_claim() RETURNS trigger AS $$
BEGIN
    IF NEW.next_due_at > OLD.next_due_at THEN
        INSERT INTO test_tick_log (kind, monitor_id, due_at)
        VALUES ('claimed', OLD.monitor_id, OLD.next_due_at);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE FUNCTION test_log_applied() RETURNS trigger AS $$
BEGIN
    IF NEW.evaluated_due_at IS DISTINCT FROM OLD.evaluated_due_at THEN
        INSERT INTO test_tick_log (kind, monitor_id, due_at)
        VALUES ('applied', NEW.id, NEW.evaluated_due_at);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER test_log_claim AFTER UPDATE ON monitors_schedule
    FOR EACH ROW EXECUTE FUNCTION test_log_claim();
CREATE TRIGGER test_log_applied AFTER UPDATE ON monitors_monitor
    FOR EACH ROW EXECUTE FUNCTION test_log_applied();
"""
DROP_LOG = """
DROP TRIGGER IF EXISTS test_log_claim ON monitors_schedule;
DROP TRIGGER IF EXISTS test_log_applied ON monitors_monitor;
DROP FUNCTION IF EXISTS test_log_claim();
DROP FUNCTION IF EXISTS test_log_applied();
DROP TABLE IF EXISTS test_tick_log;
"""


def start_beat(name: str, **env: str) -> tuple[subprocess.Popen[str], IO[str]]:
    """A real ``celery beat`` (django-celery-beat's DatabaseScheduler, as in production)."""
    log = open(ROOT / ".local" / "log" / f"test-beat-{name}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "celery"),
            "-A",
            "growalert",
            "beat",
            "--loglevel",
            "DEBUG",  # "Sending due task ..." is DEBUG (LOG_QUIET_TASKS)
            "--pidfile",
            "",
            "--schedule",
            str(ROOT / ".local" / f"celerybeat-test-{name}"),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DJANGO_DEBUG": "true", **env},
    )
    return process, log


def seed(influx_db) -> list[int]:
    """MONITORS monitors on the 10 s interval, due times spread over it, all OK (the last
    point stays in their 10 min window for a run of up to 9 minutes)."""
    owner = UserFactory(username=f"beats-{os.getpid()}")
    comp(owner)
    source = SourceFactory(owner=owner, database=influx_db.database)
    now_ms = int(time.time() * 1000)
    influx_db.client.write(
        [
            influx.line("gro01", {"temperature": 20.0}, tags={"device": "d"}, timestamp_ms=t)
            for t in range(now_ms - 60_000, now_ms + 1, 30_000)
        ],
        database=influx_db.database,
    )
    monitors = Monitor.objects.bulk_create(
        Monitor(
            owner=owner,
            source=source,
            name=f"beats {i}",
            measurement="gro01",
            field="temperature",
            tags={"device": "d"},
            aggregation="last",
            window=timedelta(minutes=10),
            critical=30.0,
            interval=INTERVAL,
        )
        for i in range(MONITORS)
    )
    # Not due until the processes are up (see spread_due_times): a monitor found overdue by
    # more than its interval would, by design, skip to its next slot after now.
    Schedule.objects.filter(monitor__in=monitors).update(
        next_due_at=timezone.now() + timedelta(days=1)
    )
    return [m.pk for m in monitors]


def spread_due_times(monitor_ids: list[int]) -> None:
    """Due from 2 s from now, spread over one interval (moving due times back is no claim)."""
    start = timezone.now() + timedelta(seconds=2)
    for i, pk in enumerate(monitor_ids):
        Schedule.objects.filter(monitor_id=pk).update(next_due_at=start + INTERVAL * i / MONITORS)


def tick_log() -> dict[str, list[tuple[int, object]]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT kind, monitor_id, due_at FROM test_tick_log ORDER BY id")
        found: dict[str, list[tuple[int, object]]] = defaultdict(list)
        for kind, monitor_id, due_at in cursor.fetchall():
            found[kind].append((monitor_id, due_at))
    return found


def wait_for(path_texts: list[tuple[str, str]], seconds: float) -> None:
    """Until each log (a file under .local/log) says its text: the processes are up (on a busy
    2-core machine five Django processes starting together take tens of seconds)."""
    deadline = time.monotonic() + seconds
    logs = ROOT / ".local" / "log"
    while not all(text in (logs / name).read_text() for name, text in path_texts):
        assert time.monotonic() < deadline, "the beats and workers did not start"
        time.sleep(0.5)


def wait_applied(seconds: float) -> None:
    """Until every claimed tick has been applied (the workers finish what the beats sent)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        log = tick_log()
        if set(log["claimed"]) <= set(log["applied"]):
            return
        time.sleep(0.5)


def test_two_beats_and_three_workers_evaluate_every_due_tick_exactly_once(influx_db) -> None:
    monitor_ids = seed(influx_db)
    with connection.cursor() as cursor:
        cursor.execute(DROP_LOG)
        cursor.execute(LOG_TABLE)
    env: dict[str, Any] = {
        "DATABASE_URL": _database_url(),
        "CELERY_QUEUE": f"test-two-beats-{os.getpid()}",  # every task on one private queue
        "SOURCES_ALLOW_PRIVATE_ADDRESSES": "true",
        # every evaluation writes its tick, the log's evidence (a settled monitor's steady
        # ticks otherwise write nothing: tests/monitors/test_unwritten_ticks.py)
        "EVALUATION_ROW_REFRESH_SECONDS": "0",
    }
    workers, beats = [], []
    try:
        workers = [start_celery_worker(f"beats-w{i}", **env) for i in range(3)]
        beats = [start_beat(f"b{i}", **env) for i in range(2)]
        wait_for(
            [(f"test-celery-beats-w{i}.log", "ready.") for i in range(3)]
            + [(f"test-beat-b{i}.log", "Sending due task dispatch") for i in range(2)],
            180,
        )
        spread_due_times(monitor_ids)
        started = timezone.now()
        time.sleep(SECONDS)
        alive = [b[0].poll() is None for b in beats] + [w[0].poll() is None for w in workers]
        for beat in beats:
            stop_celery_worker(*beat)
        ended = timezone.now()
        wait_applied(60)
    finally:
        for process in beats + workers:
            if process[0].poll() is None:
                stop_celery_worker(*process)
        log = tick_log() if connection.is_usable() else {}
        with connection.cursor() as cursor:
            cursor.execute(DROP_LOG)

    claimed, applied = log["claimed"], log["applied"]
    sent = [
        (ROOT / ".local" / "log" / f"test-beat-b{i}.log")
        .read_text()
        .count("Sending due task dispatch-due-monitors")
        for i in range(2)
    ]
    by_monitor: dict[int, list] = defaultdict(list)  # type: ignore[type-arg]
    for monitor_id, due_at in claimed:
        by_monitor[monitor_id].append(due_at)
    gaps = [
        (m, later - earlier)
        for m, ticks in by_monitor.items()
        for earlier, later in zip(sorted(ticks), sorted(ticks)[1:], strict=False)
        if later - earlier != INTERVAL
    ]
    expected_ticks = int((ended - started) / INTERVAL) - 1
    print(
        f"\n{SECONDS:.0f} s, {MONITORS} monitors every {INTERVAL.seconds} s: dispatches sent "
        f"by each beat {sent}; ticks claimed {len(claimed)}, applied {len(applied)}; "
        f"per monitor {min(map(len, by_monitor.values()), default=0)} to "
        f"{max(map(len, by_monitor.values()), default=0)} (at least {expected_ticks} expected); "
        f"load average {os.getloadavg()}"
    )

    assert all(alive), "a beat or a worker died during the run"
    assert min(sent) >= SECONDS / 2, f"both beats send the dispatcher every second: {sent}"
    assert [k for k, n in Counter(claimed).items() if n > 1] == []  # no tick claimed twice
    assert [k for k, n in Counter(applied).items() if n > 1] == []  # none applied twice
    assert set(applied) == set(claimed)  # every claimed tick applied, nothing else
    assert set(by_monitor) == set(monitor_ids)
    assert gaps == []  # consecutive ticks one interval apart: none skipped
    assert all(len(ticks) >= expected_ticks for ticks in by_monitor.values())
