from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SERVICES, services

# The ports scripts/services.sh uses (overridable, e.g. to run two checkouts side by side).
PORTS = {
    "PG": os.environ.get("GROWALERT_PG_PORT", "15432"),
    "REDIS": os.environ.get("GROWALERT_REDIS_PORT", "16379"),
    "INFLUX": os.environ.get("GROWALERT_INFLUX_PORT", "18086"),
}


def test_up_twice_is_idempotent_and_reuses_running_servers() -> None:
    first = services("up")
    second = services("up")

    assert first.returncode == 0
    assert second.returncode == 0
    assert second.stdout.count("already running") == 3


def test_status_reports_every_server_running() -> None:
    result = services("status")

    assert result.returncode == 0
    assert f"postgres: running on 127.0.0.1:{PORTS['PG']}" in result.stdout
    assert f"redis: running on 127.0.0.1:{PORTS['REDIS']}" in result.stdout
    assert f"influxdb: running on 127.0.0.1:{PORTS['INFLUX']}" in result.stdout


@pytest.mark.services
def test_status_reports_a_stopped_server_truthfully(stopped_service: list[str]) -> None:
    stopped_service.append("redis")
    services("down", "redis")

    result = services("status")

    assert result.returncode == 1
    assert "redis: stopped" in result.stdout
    assert "postgres: running" in result.stdout


def test_it_refuses_to_start_when_a_port_is_taken_by_another_process(tmp_path: Path) -> None:
    # A second copy with its own data directory finds our running Postgres on the same port.
    result = subprocess.run(
        [str(SERVICES), "up", "postgres"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GROWALERT_LOCAL_DIR": str(tmp_path)},
        check=False,
    )

    assert result.returncode == 1
    assert f"port {PORTS['PG']} on 127.0.0.1 is taken by another process" in result.stderr


def test_it_rejects_an_unknown_service_name() -> None:
    result = services("up", "mysql")

    assert result.returncode == 1
    assert "unknown service 'mysql'" in result.stderr
