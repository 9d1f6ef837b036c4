"""A reading acknowledged by POST /ingest (202) survives Redis dying before the flusher wrote it:
the local Redis runs with AOF (scripts/services.sh), as production must (docs/devices.md)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from devices import services
from devices.ingest import queue
from tests.conftest import ROOT
from tests.conftest import services as run_services
from tests.devices.ingest_helpers import flush, pending_batches, post, rows


def redis_pid() -> int:
    local = Path(os.environ.get("GROWALERT_LOCAL_DIR", ROOT / ".local"))
    return int((local / "run" / "redis.pid").read_text().split()[0])


@pytest.mark.services
@pytest.mark.django_db
def test_an_acknowledged_batch_survives_a_redis_kill_9(client, django_user_model, stopped_service):
    owner = django_user_model.objects.create_user("grower", "g@example.com", "pw-long-enough")
    _, key = services.device_add(owner=owner, name="Bench 1")
    conn = redis.Redis.from_url(settings.REDIS_URL)
    assert conn.config_get("appendonly")["appendonly"] == "yes"
    assert conn.config_get("appendfsync")["appendfsync"] == "everysec"
    conn.close()
    answer = post(client, {"event_type": "gro01", "data": {"temperature": 17.5}}, key=key)
    assert answer.status_code == 202

    stopped_service.append("redis")
    pid = redis_pid()
    os.kill(pid, signal.SIGKILL)  # no shutdown: nothing is saved on the way out
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    assert run_services("up", "redis").returncode == 0
    queue.reset_local_state()

    assert pending_batches() == 1
    assert flush() == 1
    assert [r["temperature"] for r in rows(owner.pk)] == [17.5]
