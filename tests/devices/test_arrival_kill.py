"""kill -9 of the real processes: ``manage.py evaluate_on_arrival`` killed with readings read but
not committed, ``manage.py ingest_flusher`` killed with readings read but not written. Neither
loses one: the next process claims them (docs/arrival.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import timedelta
from typing import IO, Any

import pytest
import redis
from django.conf import settings
from django.db import connection, connections

from devices.arrival.evaluator import ArrivalEvaluator
from devices.ingest import queue
from monitors.evaluate import arrival
from monitors.models import Notification
from tests.conftest import ROOT, services
from tests.devices.ingest_helpers import flush, rows
from tests.devices.test_arrival import _base_ns, _monitor, _send
from tests.notify.test_end_to_end import _database_url

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _start(command: str, name: str) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    log = open(ROOT / ".local" / "log" / f"test-{name}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", command],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "DATABASE_URL": _database_url(),
            "HOSTED_DATABASE_PREFIX": settings.HOSTED_DATABASE_PREFIX,
        },
    )
    return process, log


def _until(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _pending(conn: redis.Redis, group: str) -> int:
    """Entries read and not acknowledged in ``group`` (0 before the group exists)."""
    try:
        return int(conn.xpending(queue.STREAM, group)["pending"])
    except redis.ResponseError:
        return 0


def _groups(conn: redis.Redis) -> set[str]:
    return {g["name"].decode() for g in conn.xinfo_groups(queue.STREAM)}


def test_an_evaluator_killed_before_its_commit_loses_no_evaluation(client, owner, device):
    dev, key = device
    monitor = _monitor(owner, dev)
    conn = redis.Redis.from_url(settings.REDIS_URL)
    process, log = _start("evaluate_on_arrival", "arrival-kill")
    try:
        _until(lambda: conn.get(arrival.ready_key(0)) is not None)
        time.sleep(0.5)
        with connections["default"].cursor() as blocker:
            # Hold the monitor's row: the evaluator reads the reading, decides, and waits on
            # its conditional UPDATE, entry pending, nothing committed.
            blocker.execute("BEGIN")
            blocker.execute("SELECT 1 FROM monitors_monitor WHERE id = %s FOR UPDATE", [monitor.pk])
            _send(client, key, [(_base_ns(), 35.0)])
            _until(lambda: _pending(conn, "evaluators:0") == 1)
            time.sleep(0.5)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            blocker.execute("ROLLBACK")
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert not Notification.objects.filter(monitor=monitor).exists()
    # it loaded its notifications' links before reading (monitors/notify/warmup.py)
    assert b"ready to notify: warmed up" in (ROOT / ".local/log/test-arrival-kill.log").read_bytes()

    successor = ArrivalEvaluator(consumer="successor")
    try:
        _until(lambda: successor.evaluate_once().entries == 1, timeout=15)  # lease ran out
        successor.evaluate_once()
    finally:
        successor.close()

    assert Notification.objects.filter(monitor=monitor, event="fired").count() == 1
    assert _pending(conn, "evaluators:0") == 0
    conn.close()
    connection.close()


def test_a_flusher_killed_before_its_write_loses_no_reading(
    client, owner, device, stopped_service, monkeypatch
):
    dev, key = device
    _monitor(owner, dev, window=timedelta(seconds=30))
    conn = redis.Redis.from_url(settings.REDIS_URL)
    process, log = _start("ingest_flusher", "flusher-kill")
    try:
        _until(lambda: conn.exists(queue.STREAM) and _groups(conn) >= {queue.GROUP})
        stopped_service.append("influxdb")

        assert services("down", "influxdb").returncode == 0  # its writes fail: entries pending
        at = _base_ns(-5)
        _send(client, key, [(at, 24.5)])
        _until(lambda: _pending(conn, queue.GROUP) == 1)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert services("up", "influxdb").returncode == 0
    stopped_service.clear()
    monkeypatch.setattr(queue, "CLAIM_IDLE_MS", 0)  # claimed at once, not after 30 s

    assert flush() == 1

    assert [r["temperature"] for r in rows(owner.pk)] == [24.5]
    assert _pending(conn, queue.GROUP) == 0
    conn.close()
