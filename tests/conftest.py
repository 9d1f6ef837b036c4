"""Suite-wide fixtures: the real local services are started once (idempotently) per run."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "scripts" / "services.sh"


def services(action: str, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVICES), action, *names], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="session", autouse=True)
def _local_services() -> None:
    result = services("up")
    assert result.returncode == 0, result.stderr


@pytest.fixture
def stopped_service() -> Iterator[list[str]]:
    """Stops the services a test names (append to the list); starts them again afterwards."""
    stopped: list[str] = []
    yield stopped
    if stopped:
        result = services("up", *stopped)
        assert result.returncode == 0, result.stderr


@pytest.fixture(scope="session")
def celery_worker_process() -> Iterator[subprocess.Popen[str]]:
    """A real Celery worker (solo pool) on the local Redis, for end-to-end task tests."""
    import os

    log = open(ROOT / ".local" / "log" / "test-celery-worker.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "celery"),
            "-A",
            "growalert",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--hostname",
            f"test-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DJANGO_DEBUG": "true"},
    )
    yield process
    process.terminate()
    process.wait(timeout=30)
    log.close()
